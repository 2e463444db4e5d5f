//! Harbor's security hub (2.9+, goharbor/harbor `src/server/v2.0/handler/security.go`):
//! `GET /security/summary` and `GET /security/vul`, for callers holding the system
//! permission `security-hub` (read, list). Computed from the stored reports by
//! [`berth_scanning::security::walk`].

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{bad_request, store};
use super::query::{ListQuery, Match, parse_bool};
use super::{Caller, json, page, require_system};
use crate::AppState;
use crate::error::ApiError;
use berth_scanning::security::{Counts, Finding, Located, Scope, Sources, severity_rank, sort_located, walk};

fn sources(state: &AppState) -> Sources<'_> {
    Sources {
        catalog: state.catalog.as_ref(),
        identity: state.auth.identity.as_ref(),
        vulns: state.vulns(),
        labels: state.labels.as_ref(),
    }
}

fn flag(q: &ListQuery, name: &str) -> Result<bool, ApiError> {
    match q.param(name) {
        None => Ok(false),
        Some(v) => parse_bool(v).ok_or_else(|| bad_request(format!("{name} must be true or false, got {v:?}"))),
    }
}

/// `GET /security/summary[?with_dangerous_cve=true&with_dangerous_artifact=true]`.
pub async fn summary(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    require_system(&caller, "security-hub", "read")?;
    let q = ListQuery::parse(uri.query())?;
    let (with_cve, with_artifact) = (flag(&q, "with_dangerous_cve")?, flag(&q, "with_dangerous_artifact")?);
    let mut counts = Counts::default();
    let mut scanned = 0u64;
    // (critical, high, medium, low, project, repository, digest)
    let mut artifacts: Vec<(u64, u64, u64, u64, i64, String, String)> = Vec::new();
    let mut cves: Vec<Finding> = Vec::new();
    let total = walk(&sources(&state), &Scope::default(), &mut |v| {
        if v.scanned {
            scanned += 1;
        }
        let mut mine = Counts::default();
        for f in &v.findings {
            counts.add(f);
            mine.add(f);
            if with_cve && f.cvss_v3.is_some() {
                cves.push(f.clone());
            }
        }
        if with_artifact && mine.critical + mine.high + mine.medium + mine.low > 0 {
            artifacts.push((
                mine.critical,
                mine.high,
                mine.medium,
                mine.low,
                v.project_id,
                v.artifact.repository_name.clone(),
                v.artifact.digest.to_string(),
            ));
        }
    })
    .await
    .map_err(store)?;
    let mut body = json!({
        "critical_cnt": counts.critical,
        "high_cnt": counts.high,
        "medium_cnt": counts.medium,
        "low_cnt": counts.low,
        "none_cnt": counts.none,
        "unknown_cnt": counts.unknown,
        "total_vuls": counts.total(),
        "scanned_cnt": scanned,
        "total_artifact": total,
        "fixable_cnt": counts.fixable,
    });
    if with_cve {
        // Harbor: the five highest CVSS v3 scores, then severity; each record once.
        cves.sort_by(|a, b| {
            b.cvss_v3
                .partial_cmp(&a.cvss_v3)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| severity_rank(&b.severity).cmp(&severity_rank(&a.severity)))
                .then_with(|| a.cve_id.cmp(&b.cve_id))
                .then_with(|| a.package.cmp(&b.package))
        });
        let mut seen = HashSet::new();
        let top: Vec<Value> = cves
            .iter()
            .filter(|f| seen.insert((f.cve_id.clone(), f.package.clone(), f.version.clone())))
            .take(5)
            .map(|f| {
                json!({"cve_id": f.cve_id, "severity": f.severity, "cvss_score_v3": f.cvss_v3,
                       "desc": f.description, "package": f.package, "version": f.version})
            })
            .collect();
        body["dangerous_cves"] = json!(top);
    }
    if with_artifact {
        artifacts.sort_by(|a, b| (b.0, b.1, b.2, b.3).cmp(&(a.0, a.1, a.2, a.3)).then_with(|| a.5.cmp(&b.5)));
        let top: Vec<Value> = artifacts
            .iter()
            .take(5)
            .map(|a| {
                json!({"project_id": a.4, "repository_name": a.5, "digest": a.6,
                       "critical_cnt": a.0, "high_cnt": a.1, "medium_cnt": a.2})
            })
            .collect();
        body["dangerous_artifacts"] = json!(top);
    }
    Ok(json(StatusCode::OK, &body))
}

/// The `q` filters of `/security/vul` (Harbor's `filterMap`), all exact but the score.
#[derive(Default)]
struct VulFilter {
    cve_id: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    package: Option<String>,
    score: (Option<f64>, Option<f64>),
}

impl VulFilter {
    fn keeps(&self, f: &Finding) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w == have);
        eq(&self.cve_id, &f.cve_id)
            && eq(&self.severity, &f.severity)
            && eq(&self.status, f.status())
            && eq(&self.package, &f.package)
            && match self.score {
                (None, None) => true,
                (lo, hi) => f.cvss_v3.is_some_and(|s| lo.is_none_or(|l| s >= l) && hi.is_none_or(|h| s <= h)),
            }
    }
}

fn exact(key: &str, m: &Match) -> Result<String, ApiError> {
    match m {
        Match::Exact(v) => Ok(v.clone()),
        other => Err(bad_request(format!("q: {key} takes an exact value, not a {}", other.describe()))),
    }
}

fn score(key: &str, v: &str) -> Result<f64, ApiError> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| (0.0..=10.0).contains(s))
        .ok_or_else(|| bad_request(format!("q: {key} must be a CVSS score from 0 to 10, got {v:?}")))
}

/// Reads `q` into a scope (what narrows the walk) and a filter (what is kept of each
/// report); a key Harbor does not know is refused by name.
fn parse_q(q: &ListQuery) -> Result<(Scope, VulFilter), ApiError> {
    let mut scope = Scope::default();
    let mut f = VulFilter::default();
    for (key, m) in &q.terms {
        match key.as_str() {
            "cve_id" => f.cve_id = Some(exact(key, m)?),
            "severity" => f.severity = Some(exact(key, m)?),
            "status" => f.status = Some(exact(key, m)?),
            "package" => f.package = Some(exact(key, m)?),
            "repository_name" => scope.repositories = Some(HashSet::from([exact(key, m)?])),
            "digest" => scope.digest = Some(exact(key, m)?),
            "tag" => scope.tags = Some(HashSet::from([exact(key, m)?])),
            "project_id" => {
                let v = exact(key, m)?;
                scope.project_id = Some(
                    v.trim()
                        .parse()
                        .map_err(|_| bad_request(format!("q: project_id must be an integer, got {v:?}")))?,
                );
            }
            "cvss_score_v3" => match m {
                Match::Range(lo, hi) => {
                    f.score = (
                        lo.as_deref().map(|v| score("cvss_score_v3", v)).transpose()?,
                        hi.as_deref().map(|v| score("cvss_score_v3", v)).transpose()?,
                    )
                }
                Match::Exact(v) => {
                    let s = score(key, v)?;
                    f.score = (Some(s), Some(s));
                }
                other => {
                    return Err(bad_request(format!(
                        "q: cvss_score_v3 takes a range [from~to], not a {}",
                        other.describe()
                    )));
                }
            },
            // The portal's spelling of the range's two ends.
            "cvss_score_v3_from" => f.score.0 = Some(score(key, &exact(key, m)?)?),
            "cvss_score_v3_to" => f.score.1 = Some(score(key, &exact(key, m)?)?),
            other => {
                return Err(bad_request(format!(
                    "q: keyword {other} is not allowed; use cve_id, cvss_score_v3, severity, status, repository_name, \
                     project_id, package, tag or digest"
                )));
            }
        }
    }
    Ok((scope, f))
}

/// The most findings one `/security/vul` request collects before paging.
const MAX_FINDINGS: usize = 200_000;

/// `GET /security/vul?q=…&page=&page_size=&tune_count=&with_tag=`.
pub async fn vulnerabilities(State(state): State<AppState>, caller: Caller, uri: Uri) -> Result<Response, ApiError> {
    require_system(&caller, "security-hub", "list")?;
    let q = ListQuery::parse(uri.query())?;
    let (tune_count, with_tag) = (flag(&q, "tune_count")?, flag(&q, "with_tag")?);
    let (scope, filter) = parse_q(&q)?;
    let mut found: Vec<Located> = Vec::new();
    walk(&sources(&state), &scope, &mut |v| {
        for f in v.findings {
            if found.len() < MAX_FINDINGS && filter.keeps(&f) {
                found.push(Located {
                    project_id: v.project_id,
                    repository: v.artifact.repository_name.clone(),
                    digest: v.artifact.digest.to_string(),
                    tags: v.artifact.tags.iter().map(|t| t.name.clone()).collect(),
                    finding: f,
                });
            }
        }
    })
    .await
    .map_err(store)?;
    sort_located(&mut found);
    let total = found.len() as u64;
    let offset = (q.page - 1).saturating_mul(q.page_size) as usize;
    let items: Vec<Value> = found
        .iter()
        .skip(offset)
        .take(q.page_size as usize)
        .map(|l| {
            let f = &l.finding;
            let mut v = json!({
                "project_id": l.project_id,
                "repository_name": l.repository,
                "digest": l.digest,
                "cve_id": f.cve_id,
                "severity": f.severity,
                "status": f.status(),
                "cvss_v3_score": f.cvss_v3.unwrap_or(0.0),
                "package": f.package,
                "version": f.version,
                "fixed_version": f.fixed_version,
                "desc": f.description,
                "links": f.links,
            });
            if with_tag {
                v["tags"] = json!(l.tags);
            }
            v
        })
        .collect();
    let mut res = page(&items, total, q.link(uri.path(), total));
    // Harbor's tune_count: -1 instead of a count above 1000.
    if tune_count && total > 1000 {
        res.headers_mut().insert("x-total-count", axum::http::HeaderValue::from_static("-1"));
    }
    Ok(res)
}
