//! What the scanner and signatures say about artifacts: an artifact's vulnerabilities
//! (`…/-/artifacts/{digest}/vulnerabilities`, filtered and paged in the query string),
//! its SBOM as a package list (`…/-/artifacts/{digest}/sbom`), the scan and SBOM actions,
//! and two tags compared (`…/-/compare?a=&b=`: layers, packages, vulnerabilities).
//!
//! Reports, SBOMs and permissions are the API's (`additions/vulnerabilities`,
//! `additions/sbom`, `…/scan`). The compare page reads the two manifests' layer lists from
//! the registry after the API has answered both artifacts for this caller.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use berth_core::{Reference, RepoName};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::repos::{repo_view, short};
use super::{api_repo, refusal, ui_repo};
use crate::layout::{Nav, bytes, head, page, pager, project_tabs};
use crate::{Answer, Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 50;

/// Harbor's severities, worst first.
pub const SEVERITIES: [&str; 6] = ["Critical", "High", "Medium", "Low", "Negligible", "Unknown"];

fn rank(s: &str) -> usize {
    SEVERITIES.iter().position(|x| x.eq_ignore_ascii_case(s)).unwrap_or(SEVERITIES.len())
}

/// A severity in words with a symbol of its rank: readable without colour.
pub fn severity(ctx: &Ctx, s: &str) -> Markup {
    let sym = match rank(s) {
        0 => "‼",
        1 => "▲",
        2 => "◆",
        3 => "▽",
        _ => "·",
    };
    let key = format!("sev.{}", s.to_ascii_lowercase());
    html! { span class={ "sev sev-" (s.to_ascii_lowercase()) } { (sym) " " (ctx.t(&key)) } }
}

/// The one report of an `additions/vulnerabilities` answer (keyed by MIME type).
fn report(a: &Answer) -> Option<&Value> {
    a.json.as_object().and_then(|o| o.values().next())
}

/// The first (only) entry of an artifact's `scan_overview`.
pub fn overview(v: &Value) -> Option<&Value> {
    v["scan_overview"].as_object().and_then(|o| o.values().next())
}

/// Counts by severity, in words: "1 Critical, 2 High".
pub fn summary(ctx: &Ctx, o: &Value) -> Markup {
    let counts = &o["summary"]["summary"];
    html! {
        @let total = o["summary"]["total"].as_u64().unwrap_or(0);
        @if total == 0 { (ctx.t("scan.clean")) } @else {
            (total) " " (ctx.t("scan.total")) ": "
            @for (i, s) in SEVERITIES.iter().filter(|s| counts[**s].as_u64().unwrap_or(0) > 0).enumerate() {
                @if i > 0 { ", " }
                (counts[*s].as_u64().unwrap_or(0)) " " (severity(ctx, s))
            }
            " · " (o["summary"]["fixable"].as_u64().unwrap_or(0)) " " (ctx.t("scan.fixable"))
        }
    }
}

pub async fn vulnerabilities(ctx: Ctx, p: &str, r: &str, digest: &str, uri: &Uri) -> Response {
    let path = format!("{}/artifacts/{}/additions/vulnerabilities", api_repo(p, r), enc(digest));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let q = query(uri);
    let sev = q.get("severity").to_string();
    let fixable = q.get("fixable") == "1";
    let pkg = q.get("package").trim().to_ascii_lowercase();
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let rep = report(&a);
    let mut rows: Vec<&Value> = rep
        .and_then(|v| v["vulnerabilities"].as_array())
        .into_iter()
        .flatten()
        .filter(|v| sev.is_empty() || v["severity"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&sev)))
        .filter(|v| !fixable || v["fix_version"].as_str().is_some_and(|f| !f.is_empty()))
        .filter(|v| pkg.is_empty() || v["package"].as_str().is_some_and(|n| n.to_ascii_lowercase().contains(&pkg)))
        .collect();
    rows.sort_by_key(|v| (rank(v["severity"].as_str().unwrap_or("")), v["id"].as_str().unwrap_or("").to_string()));
    let total = rows.len() as u64;
    let shown: Vec<&Value> = rows.into_iter().skip(((pg - 1) * PAGE_SIZE) as usize).take(PAGE_SIZE as usize).collect();
    let base = format!("{}/-/artifacts/{digest}/vulnerabilities", ui_repo(p, r));
    artifact_view(
        &ctx,
        p,
        r,
        digest,
        "scan.vulns",
        html! {
            @match rep {
                None => p { (ctx.t("scan.never")) },
                Some(rep) => {
                    p { (ctx.t("scan.severity")) ": " (severity(&ctx, rep["severity"].as_str().unwrap_or("Unknown")))
                        " · " (ctx.t("scan.scanner")) ": " (rep["scanner"]["name"].as_str().unwrap_or("")) " " (rep["scanner"]["version"].as_str().unwrap_or("")) }
                    form.filters method="get" action=(base) role="search" {
                        label for="severity" { (ctx.t("scan.severity")) }
                        select id="severity" name="severity" {
                            option value="" { "—" }
                            @for s in SEVERITIES { option value=(s) selected[s.eq_ignore_ascii_case(&sev)] { (ctx.t(&format!("sev.{}", s.to_ascii_lowercase()))) } }
                        }
                        label for="package" { (ctx.t("scan.package")) }
                        input id="package" name="package" type="search" value=(q.get("package"));
                        label.check { input type="checkbox" name="fixable" value="1" checked[fixable]; " " (ctx.t("scan.only_fixable")) }
                        button type="submit" { (ctx.t("filter")) }
                    }
                    @if shown.is_empty() { p { (ctx.t("none")) } } @else {
                        table {
                            (head(&ctx, &["scan.cve", "scan.severity", "scan.cvss", "scan.package", "scan.version", "scan.fixed_in"], false))
                            tbody { @for v in &shown {
                                @let id = v["id"].as_str().unwrap_or("");
                                tr {
                                    th scope="row" {
                                        @match v["links"][0].as_str() {
                                            Some(l) if l.starts_with("https://") => { a href=(l) rel="noreferrer" { (id) } }
                                            _ => { (id) }
                                        }
                                    }
                                    td { (severity(&ctx, v["severity"].as_str().unwrap_or("Unknown"))) }
                                    td.num { (v["preferred_cvss"]["score_v3"].as_f64().map(|s| format!("{s:.1}")).unwrap_or_else(|| "—".into())) }
                                    td { code { (v["package"].as_str().unwrap_or("")) } }
                                    td { code { (v["version"].as_str().unwrap_or("")) } }
                                    td { @match v["fix_version"].as_str().filter(|f| !f.is_empty()) {
                                        Some(f) => { "✔ " code { (f) } }
                                        None => { "✖ " (ctx.t("scan.no_fix")) }
                                    } }
                                }
                            } }
                        }
                        (pager(&ctx, &base, &[("severity", &sev), ("package", q.get("package")), ("fixable", if fixable { "1" } else { "" })], pg, PAGE_SIZE, total))
                    }
                }
            }
        },
    )
}

/// The packages of an SPDX document: (name, version, purl, licence).
fn packages(doc: &Value) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = doc["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["SPDXID"].as_str() != Some("SPDXRef-DOCUMENT"))
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
            let purl = p["externalRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["referenceType"].as_str() == Some("purl"))
                .and_then(|r| r["referenceLocator"].as_str())
                .unwrap_or("")
                .to_string();
            let lic = [s("licenseConcluded"), s("licenseDeclared")]
                .into_iter()
                .find(|l| !l.is_empty() && l != "NOASSERTION")
                .unwrap_or_default();
            (s("name"), s("versionInfo"), purl, lic)
        })
        .collect();
    out.sort();
    out
}

pub async fn sbom(ctx: Ctx, p: &str, r: &str, digest: &str, uri: &Uri) -> Response {
    let api = format!("{}/artifacts/{}/additions/sbom", api_repo(p, r), enc(digest));
    let a = ctx.call(Method::GET, &api, None).await;
    let q = query(uri);
    let name = q.get("name").trim().to_ascii_lowercase();
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let base = format!("{}/-/artifacts/{digest}/sbom", ui_repo(p, r));
    if !a.ok() && a.status != StatusCode::NOT_FOUND {
        return refusal(&ctx, &a);
    }
    let all = packages(&a.json);
    let rows: Vec<_> = all.iter().filter(|p| name.is_empty() || p.0.to_ascii_lowercase().contains(&name)).collect();
    let total = rows.len() as u64;
    artifact_view(
        &ctx,
        p,
        r,
        digest,
        "sbom.title",
        html! {
            @if !a.ok() { p role="status" { (a.error()) } } @else {
                p {
                    (a.json["name"].as_str().unwrap_or("")) " · " (a.json["spdxVersion"].as_str().unwrap_or("")) " · "
                    (all.len()) " " (ctx.t("sbom.packages")) " · "
                    a href=(api) download="sbom.spdx.json" { (ctx.t("sbom.download")) }
                }
                form.filters method="get" action=(base) role="search" {
                    label for="name" { (ctx.t("sbom.filter")) }
                    input id="name" name="name" type="search" value=(q.get("name"));
                    button type="submit" { (ctx.t("filter")) }
                }
                @if rows.is_empty() { p { (ctx.t("none")) } } @else {
                    table {
                        (head(&ctx, &["scan.package", "scan.version", "sbom.purl", "sbom.license"], false))
                        tbody { @for (n, v, purl, lic) in rows.iter().skip(((pg - 1) * PAGE_SIZE) as usize).take(PAGE_SIZE as usize) {
                            tr {
                                th scope="row" { (n) }
                                td { code { (v) } }
                                td { code { (purl) } }
                                td { (lic) }
                            }
                        } }
                    }
                    (pager(&ctx, &base, &[("name", q.get("name"))], pg, PAGE_SIZE, total))
                }
            }
        },
    )
}

/// `POST …/-/artifacts/{digest}/scan` with `scan_type` (vulnerability or sbom).
pub async fn scan(ctx: &Ctx, p: &str, r: &str, digest: &str, form: &Form) -> Response {
    let back = format!("{}/-/artifacts/{digest}", ui_repo(p, r));
    let path = format!("{}/artifacts/{}/scan", api_repo(p, r), enc(digest));
    let kind = if form.get("scan_type") == "sbom" { "sbom" } else { "vulnerability" };
    ctx.submit(form, Method::POST, &path, Some(json!({ "scan_type": kind })), ctx.t("scan.started"), &back, &back).await
}

/// One side of a comparison: the artifact (as the API shows it), its layers, packages and
/// vulnerabilities.
struct Side {
    digest: String,
    layers: Vec<(String, u64)>,
    packages: BTreeMap<String, String>,
    vulns: BTreeMap<String, (String, String)>,
    scanned: bool,
    sbom: bool,
}

async fn side(ctx: &Ctx, p: &str, r: &str, tag: &str) -> Result<Side, Response> {
    let art = ctx.call(Method::GET, &format!("{}/artifacts/{}", api_repo(p, r), enc(tag)), None).await;
    if !art.ok() {
        return Err(refusal(ctx, &art));
    }
    let digest = art.json["digest"].as_str().unwrap_or("").to_string();
    let mut layers = Vec::new();
    if let (Ok(name), Ok(reference)) = (format!("{p}/{r}").parse::<RepoName>(), digest.parse::<Reference>())
        && let Ok(m) = ctx.state.registry.manifest(&name, &reference).await
        && let Ok(v) = serde_json::from_slice::<Value>(&m.content)
    {
        for l in v["layers"].as_array().into_iter().flatten() {
            layers.push((l["digest"].as_str().unwrap_or("").to_string(), l["size"].as_u64().unwrap_or(0)));
        }
    }
    let vr = ctx
        .call(Method::GET, &format!("{}/artifacts/{}/additions/vulnerabilities", api_repo(p, r), enc(&digest)), None)
        .await;
    let rep = report(&vr);
    let vulns = rep
        .and_then(|v| v["vulnerabilities"].as_array())
        .into_iter()
        .flatten()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            (format!("{} {}", s("id"), s("package")), (s("severity"), s("version")))
        })
        .collect();
    let sb =
        ctx.call(Method::GET, &format!("{}/artifacts/{}/additions/sbom", api_repo(p, r), enc(&digest)), None).await;
    let packages =
        if sb.ok() { packages(&sb.json).into_iter().map(|(n, v, _, _)| (n, v)).collect() } else { BTreeMap::new() };
    Ok(Side { digest, layers, packages, vulns, scanned: rep.is_some(), sbom: sb.ok() })
}

/// A vulnerability key ("id package") and what each side says of it (severity, version).
type VulnRow<'a> = (&'a String, Option<&'a (String, String)>, Option<&'a (String, String)>);

pub async fn compare(ctx: Ctx, p: &str, r: &str, uri: &Uri) -> Response {
    let q = query(uri);
    let (ta, tb) = (q.get("a").trim().to_string(), q.get("b").trim().to_string());
    let base = format!("{}/-/compare", ui_repo(p, r));
    let form = html! {
        form.filters method="get" action=(base) {
            label for="a" { (ctx.t("compare.a")) }
            input id="a" name="a" value=(ta) required;
            label for="b" { (ctx.t("compare.b")) }
            input id="b" name="b" value=(tb) required;
            button type="submit" { (ctx.t("compare.go")) }
        }
    };
    if ta.is_empty() || tb.is_empty() {
        // The repository must be visible to the caller even before anything is compared.
        let repo = ctx.call(Method::GET, &api_repo(p, r), None).await;
        if !repo.ok() {
            return refusal(&ctx, &repo);
        }
        return repo_view(&ctx, p, r, "compare", html! { (form) p.hint { (ctx.t("compare.hint")) } });
    }
    let a = match side(&ctx, p, r, &ta).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let b = match side(&ctx, p, r, &tb).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let la: BTreeSet<&str> = a.layers.iter().map(|(d, _)| d.as_str()).collect();
    let lb: BTreeSet<&str> = b.layers.iter().map(|(d, _)| d.as_str()).collect();
    let shared = la.intersection(&lb).count();
    let pkg_names: BTreeSet<&String> = a.packages.keys().chain(b.packages.keys()).collect();
    let pkg_rows: Vec<(&String, Option<&String>, Option<&String>)> =
        pkg_names.into_iter().map(|n| (n, a.packages.get(n), b.packages.get(n))).filter(|(_, x, y)| x != y).collect();
    let vuln_keys: BTreeSet<&String> = a.vulns.keys().chain(b.vulns.keys()).collect();
    let mut vuln_rows: Vec<VulnRow> = vuln_keys
        .into_iter()
        .map(|k| (k, a.vulns.get(k), b.vulns.get(k)))
        .filter(|(_, x, y)| x.is_none() || y.is_none())
        .collect();
    vuln_rows.sort_by_key(|(k, x, y)| (rank(&x.or(*y).map(|v| v.0.clone()).unwrap_or_default()), (*k).clone()));
    let mark = |present: bool| if present { "✔" } else { "—" };
    repo_view(
        &ctx,
        p,
        r,
        "compare",
        html! {
            (form)
            @if a.digest == b.digest { p role="status" { (ctx.t("compare.same")) " " code { (short(&a.digest)) } } }
            h3 { (ctx.t("compare.layers")) }
            p { (shared) " " (ctx.t("compare.shared")) " · " (la.len() - shared) " " (ctx.t("compare.only")) " " code { (ta) } " · " (lb.len() - shared) " " (ctx.t("compare.only")) " " code { (tb) } }
            table {
                thead { tr {
                    th scope="col" { "#" }
                    th scope="col" { (ctx.t("col.digest")) }
                    th scope="col" { (ctx.t("artifact.size")) }
                    th scope="col" { code { (ta) } }
                    th scope="col" { code { (tb) } }
                } }
                tbody {
                    @let mut seen = BTreeSet::new();
                    @for (i, (d, size)) in a.layers.iter().chain(b.layers.iter()).enumerate() {
                        @if seen.insert(d.clone()) {
                            tr {
                                th scope="row" { (i + 1) }
                                td { code title=(d) { (short(d)) } }
                                td.num { (bytes(*size)) }
                                td { (mark(la.contains(d.as_str()))) }
                                td { (mark(lb.contains(d.as_str()))) }
                            }
                        }
                    }
                }
            }
            h3 { (ctx.t("compare.packages")) }
            @if !a.sbom || !b.sbom { p { (ctx.t("compare.need_sbom")) } }
            @else if pkg_rows.is_empty() { p { (ctx.t("compare.no_diff")) } } @else {
                table {
                    thead { tr { th scope="col" { (ctx.t("scan.package")) } th scope="col" { code { (ta) } } th scope="col" { code { (tb) } } } }
                    tbody { @for (n, x, y) in &pkg_rows {
                        tr { th scope="row" { (n) } td { code { (x.map_or("—", |v| v.as_str())) } } td { code { (y.map_or("—", |v| v.as_str())) } } }
                    } }
                }
            }
            h3 { (ctx.t("compare.vulns")) }
            @if !a.scanned || !b.scanned { p { (ctx.t("compare.need_scan")) } }
            @else if vuln_rows.is_empty() { p { (ctx.t("compare.no_diff")) } } @else {
                table {
                    thead { tr { th scope="col" { (ctx.t("scan.cve")) } th scope="col" { (ctx.t("scan.severity")) } th scope="col" { code { (ta) } } th scope="col" { code { (tb) } } } }
                    tbody { @for (k, x, y) in &vuln_rows {
                        tr {
                            th scope="row" { (k) }
                            td { (severity(&ctx, &x.or(*y).map(|v| v.0.clone()).unwrap_or_default())) }
                            td { (mark(x.is_some())) }
                            td { (mark(y.is_some())) }
                        }
                    } }
                }
            }
        },
    )
}

/// A page about one artifact (its vulnerabilities, its SBOM): the project's tabs, the way
/// back to the artifact, the title (a message key), then `body`.
fn artifact_view(ctx: &Ctx, p: &str, r: &str, digest: &str, title: &str, body: Markup) -> Response {
    page(
        ctx,
        &format!("{p}/{r}@{}", short(digest)),
        Nav::Projects,
        html! {
            (project_tabs(ctx, p, "repos"))
            p { a href={ (ui_repo(p, r)) "/-/artifacts/" (digest) } { "← " (ctx.t("artifact.title")) " " code { (short(digest)) } } }
            h2 { (ctx.t(title)) }
            (body)
        },
    )
}
