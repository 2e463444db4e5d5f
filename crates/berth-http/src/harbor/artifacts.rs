//! `…/repositories/{r}/artifacts[/{reference}[/tags[/{tag}]]]` (goharbor/harbor
//! `src/server/v2.0/handler/artifact.go`, `src/controller/artifact/*`), over the catalog
//! store and the registry.
//!
//! An artifact is a manifest. Its Harbor JSON adds what the catalog does not keep: the
//! config's media type (Harbor's `media_type` of an image), the artifact `type` Harbor's
//! processors would give it, and for images `extra_attrs` read from the config blob.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use berth_core::digest::Digest;
use berth_core::identity::rbac::{Action, Resource};
use berth_core::policy::{ImmutableMatcher, immutable, immutable_rules};
use berth_core::store::catalog::{ArtifactInfo, CatalogError, TagInfo};
use berth_core::{CoreError, Reference, RepoName, Tag};

use super::dto::{ArtifactResp, PlatformResp, ReferenceResp, TagReq, TagResp, time, time_or_zero};
use super::errors::{bad_request, conflict, location, not_found, store};
use super::json::Body;
use super::query::{ALL, ListQuery, Match, SortValue, parse_bool};
use super::repositories::{Target, target};
use super::{Caller, audit, json, ok, page};
use crate::AppState;
use crate::error::ApiError;

const SORTABLE: &[&str] = &["id", "push_time", "pull_time", "size", "digest"];
/// What `…/tags?sort=` takes.
const TAG_SORTABLE: &[&str] = &["id", "name", "push_time", "pull_time"];

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// Largest config blob read for `extra_attrs`.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Path parameters of the artifact routes.
type ArtifactPath = Path<(String, String, String)>;

/// A `{reference}`: a digest if it has a `:`, else a tag; 400 naming it otherwise.
fn reference(raw: &str) -> Result<Reference, ApiError> {
    raw.parse::<Reference>().map_err(|e| bad_request(format!("invalid reference {raw:?}: {e}")))
}

pub(super) async fn load(state: &AppState, t: &Target, raw: &str) -> Result<ArtifactInfo, ApiError> {
    let r = reference(raw)?;
    state.catalog.artifact(&t.repo, &r).await.map_err(store)?.ok_or_else(|| {
        not_found(format!("artifact {}{}{raw} not found", t.repo, if raw.contains(':') { '@' } else { ':' }))
    })
}

/// `with_tag` (default true) and the other `with_*` flags (accepted; labels are always
/// included, accessories with `with_accessory`, and Berth has no scans to add yet).
fn with_tag(q: &ListQuery) -> Result<bool, ApiError> {
    for (k, v) in &q.params {
        if k.starts_with("with_") && parse_bool(v).is_none() {
            return Err(bad_request(format!("{k} must be true or false, got {v:?}")));
        }
    }
    Ok(q.param("with_tag").and_then(parse_bool).unwrap_or(true))
}

/// `with_accessory` (default false, as Harbor).
fn with_accessory(q: &ListQuery) -> bool {
    q.param("with_accessory").and_then(parse_bool).unwrap_or(false)
}

/// Harbor's `Accessory` JSON for one accessory of `subject`.
async fn accessory_json(
    state: &AppState,
    t: &Target,
    subject: &ArtifactInfo,
    f: &crate::pull_policy::Found,
) -> Result<Value, ApiError> {
    let acc = state.catalog.artifact(&t.repo, &Reference::Digest(f.digest.clone())).await.map_err(store)?;
    let id = acc.as_ref().map_or(0, |a| a.id);
    Ok(serde_json::json!({
        "id": id,
        "artifact_id": id,
        "subject_artifact_id": subject.id,
        "subject_artifact_repo": t.repo.to_string(),
        "subject_artifact_digest": subject.digest.to_string(),
        "size": acc.as_ref().map_or(f.size, |a| a.size),
        "digest": f.digest.to_string(),
        "type": f.kind.as_str(),
        "icon": "",
        "creation_time": time(acc.as_ref().map_or(0, |a| a.push_time)),
    }))
}

/// `…/artifacts/{reference}/accessories` (Harbor: accessory list, `q=type={…}`, paged).
pub async fn list_accessories(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
    uri: Uri,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Accessory, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    let types: Option<Vec<String>> = match q.term("type") {
        Some(Match::Exact(v)) => Some(vec![v.clone()]),
        Some(Match::Or(vs)) => Some(vs.clone()),
        Some(m) => return Err(bad_request(format!("type does not support {} queries", m.describe()))),
        None => None,
    };
    let a = load(&state, &t, &reference).await?;
    let found = crate::pull_policy::accessories(&state, &t.repo, &a.digest).await?;
    let found: Vec<_> =
        found.into_iter().filter(|f| types.as_ref().is_none_or(|ts| ts.iter().any(|x| x == f.kind.as_str()))).collect();
    let total = found.len() as u64;
    let found = q.sort_and_page(found, |f, _| SortValue::Text(f.digest.to_string()));
    let mut body = Vec::with_capacity(found.len());
    for f in &found {
        body.push(accessory_json(&state, &t, &a, f).await?);
    }
    Ok(page(&body, total, q.link(uri.path(), total)))
}

// --- the artifact JSON ---

/// Harbor's artifact type for a (config or manifest) media type, as its processors name it.
fn artifact_kind(media_type: &str) -> String {
    match media_type {
        OCI_CONFIG
        | DOCKER_CONFIG
        | "application/vnd.oci.image.index.v1+json"
        | "application/vnd.docker.distribution.manifest.list.v2+json"
        | "application/vnd.docker.distribution.manifest.v1+json"
        | "application/vnd.docker.distribution.manifest.v1+prettyjws" => "IMAGE".into(),
        HELM_CONFIG => "CHART".into(),
        "application/vnd.cnab.manifest.v1" => "CNAB".into(),
        "application/vnd.wasm.config.v1+json" => "WASM".into(),
        other => default_kind(other).unwrap_or_else(|| "UNKNOWN".into()),
    }
}

/// Harbor's default processor: `^application/vnd\.[^.]*\.(.*)\.config\.[^.]*\+json$`,
/// upper-cased.
fn default_kind(mt: &str) -> Option<String> {
    let rest = mt.strip_prefix("application/vnd.")?.strip_suffix("+json")?;
    let (_, rest) = rest.split_once('.')?;
    let i = rest.rfind(".config.")?;
    let (kind, tail) = (&rest[..i], &rest[i + ".config.".len()..]);
    (!tail.contains('.')).then(|| kind.to_uppercase())
}

/// What the manifest itself says beyond the catalog: the config descriptor, if any.
struct Parsed {
    config: Option<(String, Digest)>,
}

async fn parse_manifest(state: &AppState, repo: &RepoName, digest: &Digest) -> Parsed {
    let m = match state.registry.manifest(repo, &Reference::Digest(digest.clone())).await {
        Ok(m) => m,
        Err(_) => return Parsed { config: None },
    };
    let v: Value = serde_json::from_slice(&m.content).unwrap_or(Value::Null);
    let config = v.get("config").and_then(|c| {
        let mt = c.get("mediaType")?.as_str()?.to_string();
        let d = c.get("digest")?.as_str()?.parse::<Digest>().ok()?;
        Some((mt, d))
    });
    Parsed { config }
}

/// The config digest of an image manifest whose config is an image's (build history and
/// the platform are read from it); `None` for any other artifact.
fn image_config_digest(media_type: &str, parsed: &Parsed) -> Option<Digest> {
    match &parsed.config {
        Some((mt, d))
            if (media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST) && artifact_kind(mt) == "IMAGE" =>
        {
            Some(d.clone())
        }
        _ => None,
    }
}

/// An image's own platform, `os/architecture[/variant]`, from its config blob (where the
/// artifact JSON's `extra_attrs` reads `os` and `architecture`); `None` for any other
/// artifact, or a config that is unreadable or names no platform. One manifest read and
/// one config read: callers bound how many artifacts they ask about.
pub(crate) async fn image_platform(
    state: &AppState,
    repo: &RepoName,
    digest: &Digest,
    media_type: &str,
) -> Option<String> {
    let parsed = parse_manifest(state, repo, digest).await;
    let config = read_config(state, repo, &image_config_digest(media_type, &parsed)?).await?;
    crate::tag_page::platform_name(&Value::Object(config))
}

/// The config blob as JSON; `None` if it is missing, too large or not a JSON object.
async fn read_config(state: &AppState, repo: &RepoName, digest: &Digest) -> Option<Map<String, Value>> {
    let blob = state.registry.open_blob(repo, digest, None).await.ok()?;
    if blob.info.size > MAX_CONFIG_BYTES {
        return None;
    }
    let mut body = blob.reader.body;
    let mut buf = Vec::with_capacity(blob.info.size as usize);
    while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        buf.extend_from_slice(&chunk.ok()?);
        if buf.len() as u64 > MAX_CONFIG_BYTES {
            return None;
        }
    }
    match serde_json::from_slice(&buf) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// Harbor's image `extra_attrs`: created, architecture, os, config and author (or the
/// `org.opencontainers.image.authors` / `maintainer` label).
fn image_attrs(config: &Map<String, Value>) -> Map<String, Value> {
    let inner = config.get("config").cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut author = config.get("author").and_then(Value::as_str).unwrap_or_default().to_string();
    if author.is_empty()
        && let Some(labels) = inner.get("Labels").and_then(Value::as_object)
    {
        for key in ["org.opencontainers.image.authors", "maintainer"] {
            if let Some(v) = labels.get(key).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                author = v.to_string();
                break;
            }
        }
    }
    let text = |k: &str| config.get(k).cloned().unwrap_or(Value::String(String::new()));
    let mut out = Map::new();
    out.insert("created".into(), config.get("created").cloned().unwrap_or(Value::Null));
    out.insert("architecture".into(), text("architecture"));
    out.insert("os".into(), text("os"));
    out.insert("config".into(), inner);
    out.insert("author".into(), Value::String(author));
    out
}

/// The project's immutable rules when the request asks `with_immutable_status=true`
/// (none otherwise: the flags then stay false, as in Harbor).
async fn immutable_status(state: &AppState, t: &Target, q: &ListQuery) -> Result<Vec<ImmutableMatcher>, ApiError> {
    match q.param("with_immutable_status").map(parse_bool) {
        None | Some(Some(false)) => Ok(Vec::new()),
        Some(Some(true)) => immutable_rules(state.policies.as_ref(), t.project.id).await.map_err(store),
        Some(None) => Err(bad_request("with_immutable_status must be true or false")),
    }
}

fn tag_resp(t: &Target, artifact_id: i64, tag: &TagInfo, rules: &[ImmutableMatcher]) -> TagResp {
    let rest = t.repo.as_str().split_once('/').map_or(t.repo.as_str(), |(_, r)| r);
    TagResp {
        id: tag.id,
        repository_id: t.info.id,
        artifact_id,
        name: tag.name.clone(),
        push_time: time(tag.push_time),
        pull_time: time_or_zero(tag.pull_time),
        immutable: immutable(rules, rest, &tag.name).is_some(),
    }
}

async fn artifact_resp(
    state: &AppState,
    t: &Target,
    a: &ArtifactInfo,
    with_tag: bool,
    with_accessory: bool,
    rules: &[ImmutableMatcher],
) -> Result<ArtifactResp, ApiError> {
    let (mut accessories, mut signature) = (None, None);
    if with_accessory {
        let found = crate::pull_policy::accessories(state, &t.repo, &a.digest).await?;
        let mut list = Vec::with_capacity(found.len());
        for f in &found {
            list.push(accessory_json(state, t, a, f).await?);
        }
        signature = Some(crate::pull_policy::signature_json(state, &t.repo, &a.digest, &found).await);
        accessories = Some(list);
    }
    let labels = state.labels.labels_of(&t.repo, &a.digest).await.map_err(store)?;
    let parsed = parse_manifest(state, &t.repo, &a.digest).await;
    let media_type = match &parsed.config {
        Some((mt, _)) if a.media_type == OCI_MANIFEST || a.media_type == DOCKER_MANIFEST => mt.clone(),
        _ => a.media_type.clone(),
    };
    let kind = artifact_kind(&media_type);
    let mut extra_attrs = Map::new();
    if let Some((_, config_digest)) = &parsed.config
        && kind != "UNKNOWN"
        && media_type != a.media_type
        && let Some(config) = read_config(state, &t.repo, config_digest).await
    {
        extra_attrs = if kind == "IMAGE" { image_attrs(&config) } else { config };
    }
    let annotations = a
        .annotations
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| match v {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .unwrap_or_default();
    let references = a
        .references
        .iter()
        .map(|r| ReferenceResp {
            parent_id: a.id,
            child_id: r.child_id,
            child_digest: r.child_digest.to_string(),
            platform: r.platform.as_ref().and_then(PlatformResp::from_descriptor),
            annotations: r.annotations.clone(),
        })
        .collect();
    Ok(ArtifactResp {
        id: a.id,
        kind,
        media_type,
        manifest_media_type: a.media_type.clone(),
        artifact_type: a.artifact_type.clone(),
        project_id: t.project.id,
        repository_id: t.info.id,
        repository_name: t.repo.to_string(),
        digest: a.digest.to_string(),
        size: a.size,
        push_time: time(a.push_time),
        pull_time: time_or_zero(a.pull_time),
        extra_attrs,
        annotations,
        references,
        tags: with_tag.then(|| a.tags.iter().map(|tag| tag_resp(t, a.id, tag, rules)).collect()),
        labels: labels.iter().filter_map(|l| serde_json::to_value(super::labels::label_resp(l)).ok()).collect(),
        accessories,
        signature,
        scan_overview: None,
        sbom_overview: None,
    })
}

/// Adds `scan_overview` / `sbom_overview` when the query asks for them.
async fn overviews(
    state: &AppState,
    q: &ListQuery,
    headers: &HeaderMap,
    resp: &mut ArtifactResp,
) -> Result<(), ApiError> {
    if q.param("with_scan_overview").and_then(parse_bool) == Some(true) {
        resp.scan_overview = super::scan::scan_overview(state, &resp.digest, headers).await?;
    }
    if q.param("with_sbom_overview").and_then(parse_bool) == Some(true) {
        resp.sbom_overview = super::scan::sbom_overview(state, &resp.digest).await?;
    }
    Ok(())
}

// --- handlers ---

/// `q=tags=*` (tagged), `tags=nil` (untagged), `tags=v`, `tags=~v`, `digest=sha256:…`,
/// `type=IMAGE` or `type={IMAGE CHART}` (Harbor's artifact types), `labels=3` or
/// `labels=(3 5)` (label ids, all of them).
struct Filter {
    tags: Option<Match>,
    digest: Option<String>,
    kinds: Option<Vec<String>>,
    labels: Option<Vec<i64>>,
}

impl Filter {
    fn parse(q: &ListQuery) -> Result<Self, ApiError> {
        let tags = match q.term("tags") {
            Some(m @ (Match::Exact(_) | Match::Fuzzy(_))) => Some(m.clone()),
            Some(m) => return Err(bad_request(format!("tags does not support {} queries", m.describe()))),
            None => None,
        };
        let digest = match q.term("digest") {
            Some(Match::Exact(d)) => Some(d.clone()),
            Some(m) => return Err(bad_request(format!("digest supports exact matches only, not {}", m.describe()))),
            None => None,
        };
        let kinds = match q.term("type") {
            Some(Match::Exact(v)) => Some(vec![v.to_uppercase()]),
            Some(Match::Or(vs)) => Some(vs.iter().map(|v| v.to_uppercase()).collect()),
            Some(m) => return Err(bad_request(format!("type does not support {} queries", m.describe()))),
            None => None,
        };
        let labels = match q.term("labels") {
            Some(Match::Exact(v)) => Some(vec![v.clone()]),
            Some(Match::And(vs)) => Some(vs.clone()),
            Some(m) => return Err(bad_request(format!("labels does not support {} queries", m.describe()))),
            None => None,
        };
        let labels = labels
            .map(|ids| {
                ids.iter()
                    .map(|v| v.parse::<i64>().map_err(|_| bad_request(format!("labels takes label ids, not {v:?}"))))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Filter { tags, digest, kinds, labels })
    }

    fn keeps(&self, a: &ArtifactInfo) -> bool {
        let tags_ok = match &self.tags {
            None => true,
            Some(Match::Exact(v)) if v == "*" => !a.tags.is_empty(),
            Some(Match::Exact(v)) if v == "nil" => a.tags.is_empty(),
            Some(Match::Exact(v)) => a.tags.iter().any(|t| &t.name == v),
            Some(Match::Fuzzy(v)) => a.tags.iter().any(|t| t.name.contains(v.as_str())),
            Some(_) => false,
        };
        tags_ok
            && self.digest.as_ref().is_none_or(|d| a.digest.to_string() == *d)
            && self.kinds.as_ref().is_none_or(|ks| ks.contains(&stored_kind(a)))
    }

    /// The label filter, which needs the store: the artifacts carrying every label asked for.
    async fn with_labels(
        &self,
        state: &AppState,
        repo: &RepoName,
        all: Vec<ArtifactInfo>,
    ) -> Result<Vec<ArtifactInfo>, ApiError> {
        let Some(wanted) = &self.labels else { return Ok(all) };
        let mut kept = Vec::new();
        for a in all {
            let has = state.labels.labels_of(repo, &a.digest).await.map_err(store)?;
            if wanted.iter().all(|id| has.iter().any(|l| l.id == *id)) {
                kept.push(a);
            }
        }
        Ok(kept)
    }
}

/// The artifact type from what the catalog records (the config's media type of an image
/// manifest, else the manifest's), without reading the manifest: what `type=` filters on.
fn stored_kind(a: &ArtifactInfo) -> String {
    match &a.artifact_type {
        Some(t) if a.media_type == OCI_MANIFEST || a.media_type == DOCKER_MANIFEST => artifact_kind(t),
        _ => artifact_kind(&a.media_type),
    }
}

fn sort_key(a: &ArtifactInfo, key: &str) -> SortValue {
    match key {
        "id" => SortValue::Int(a.id),
        "size" => SortValue::Int(a.size as i64),
        "digest" => SortValue::Text(a.digest.to_string()),
        // Never pulled sorts first, as Harbor's zero time does.
        "pull_time" => SortValue::Int(a.pull_time.unwrap_or(i64::MIN)),
        _ => SortValue::Int(a.push_time),
    }
}

fn tag_sort_key(t: &TagInfo, key: &str) -> SortValue {
    match key {
        "id" => SortValue::Int(t.id),
        "name" => SortValue::Text(t.name.clone()),
        "pull_time" => SortValue::Int(t.pull_time.unwrap_or(i64::MIN)),
        _ => SortValue::Int(t.push_time),
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Artifact, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(SORTABLE)?;
    let with_tag = with_tag(&q)?;
    let with_accessory = with_accessory(&q);
    let filter = Filter::parse(&q)?;
    let missing = || not_found(format!("repository {} not found", t.repo));
    // Accessories (signatures, SBOMs) are listed under their subject, never on their own,
    // as Harbor: the whole listing is read to leave them out before paging. (The store
    // could page past them itself once it records accessories; a repository has few
    // enough artifacts that this has not mattered yet.)
    let (all, _) = state.catalog.list_artifacts(&t.repo, &ALL, true).await.map_err(store)?.ok_or_else(missing)?;
    let all: Vec<ArtifactInfo> =
        all.into_iter().filter(|a| !crate::pull_policy::is_accessory(a) && filter.keeps(a)).collect();
    let all = filter.with_labels(&state, &t.repo, all).await?;
    let total = all.len() as u64;
    let artifacts = q.sort_and_page(all, sort_key);
    let rules = immutable_status(&state, &t, &q).await?;
    let mut body = Vec::with_capacity(artifacts.len());
    for a in &artifacts {
        let mut resp = artifact_resp(&state, &t, a, with_tag, with_accessory, &rules).await?;
        overviews(&state, &q, &headers, &mut resp).await?;
        body.push(resp);
    }
    Ok(page(&body, total, q.link(uri.path(), total)))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Artifact, Action::Read).await?;
    let q = ListQuery::parse(uri.query())?;
    let with_tag = with_tag(&q)?;
    let a = load(&state, &t, &reference).await?;
    let rules = immutable_status(&state, &t, &q).await?;
    let mut resp = artifact_resp(&state, &t, &a, with_tag, with_accessory(&q), &rules).await?;
    overviews(&state, &q, &headers, &mut resp).await?;
    Ok(json(StatusCode::OK, &resp))
}

/// Deletes the manifest (by digest, so every tag of it goes too) and, as Harbor does, the
/// children of an index that are neither tagged nor referenced by another artifact. An
/// artifact that an index references cannot be deleted on its own (412).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Artifact, Action::Delete).await?;
    let a = load(&state, &t, &reference).await?;
    let (listed, _) = state.catalog.list_artifacts(&t.repo, &ALL, true).await.map_err(store)?.unwrap_or_default();
    let mut parents: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for l in &listed {
        for child in &l.references {
            parents.entry(&child.child_digest).or_default().push(&l.digest);
        }
    }
    let referenced_by_other = |d: &Digest| parents.get(d).is_some_and(|ps| ps.iter().any(|p| **p != a.digest));
    let tags: Vec<String> = a.tags.iter().map(|t| t.name.clone()).collect();
    crate::immutable::guard(&state, &t.repo, &tags).await?;
    if referenced_by_other(&a.digest) {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "VIOLATE_FOREIGN_KEY_CONSTRAINT",
            format!("the artifact {}@{} is referenced by others and cannot be deleted", t.repo, a.digest),
        ));
    }
    // Accessories (signatures, SBOMs) are hard references in Harbor: they go with their
    // subject. Their tags are checked against immutable rules first, like the subject's.
    let found = crate::pull_policy::accessories(&state, &t.repo, &a.digest).await?;
    let mut accessory_tags = Vec::new();
    for f in &found {
        if let Some(acc) = state.catalog.artifact(&t.repo, &Reference::Digest(f.digest.clone())).await.map_err(store)? {
            accessory_tags.extend(acc.tags.iter().map(|t| t.name.clone()));
        }
    }
    crate::immutable::guard(&state, &t.repo, &accessory_tags).await?;
    delete_manifest(&state, &t, &a.digest, Some(caller.0.name())).await?;
    state.events.committed();
    for f in &found {
        match delete_manifest(&state, &t, &f.digest, None).await {
            Ok(()) => {}
            Err(e) if e.status == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    for child in &a.references {
        if child.child_id.is_none() || child.child_digest == a.digest || referenced_by_other(&child.child_digest) {
            continue;
        }
        let c = state.catalog.artifact(&t.repo, &Reference::Digest(child.child_digest.clone())).await.map_err(store)?;
        if let Some(c) = c.filter(|c| c.tags.is_empty())
            && let Err(e) = delete_manifest(&state, &t, &c.digest, None).await
            && e.status != StatusCode::NOT_FOUND
        {
            return Err(e);
        }
    }
    Ok(ok())
}

/// Deletes one manifest; with `username`, its `delete` event commits with it.
async fn delete_manifest(state: &AppState, t: &Target, d: &Digest, username: Option<&str>) -> Result<(), ApiError> {
    match state.registry.delete_manifest_by(&t.repo, &Reference::Digest(d.clone()), username).await {
        Ok(()) => Ok(()),
        Err(CoreError::ManifestUnknown(_)) => Err(not_found(format!("artifact {}@{d} not found", t.repo))),
        Err(e) => Err(e.into()),
    }
}

pub async fn list_tags(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
    uri: Uri,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Tag, Action::List).await?;
    let q = ListQuery::parse(uri.query())?;
    q.check_sort(TAG_SORTABLE)?;
    for (k, v) in &q.params {
        if k.starts_with("with_") && parse_bool(v).is_none() {
            return Err(bad_request(format!("{k} must be true or false, got {v:?}")));
        }
    }
    let a = load(&state, &t, &reference).await?;
    let r = Reference::Digest(a.digest.clone());
    let newest_first = super::query::Sort { key: "push_time".into(), desc: true };
    // The store's order is newest first; any other is sorted here, over all the tags.
    let wanted = if q.sorted_like(&newest_first) { q.store_page() } else { ALL };
    let (tags, total) = state
        .catalog
        .list_artifact_tags(&t.repo, &r, &wanted)
        .await
        .map_err(store)?
        .ok_or_else(|| not_found(format!("artifact {}@{} not found", t.repo, a.digest)))?;
    let tags = if q.sorted_like(&newest_first) { tags } else { q.sort_and_page(tags, tag_sort_key) };
    let rules = immutable_status(&state, &t, &q).await?;
    let body: Vec<TagResp> = tags.iter().map(|tag| tag_resp(&t, a.id, tag, &rules)).collect();
    Ok(page(&body, total, q.link(uri.path(), total)))
}

/// Adds a tag to the artifact: 201 with `Location: <path>/<tag>`; 409 if the repository
/// already has the tag (on any artifact: Harbor never moves a tag here).
pub async fn create_tag(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
    uri: Uri,
    Body(req): Body<TagReq>,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Tag, Action::Create).await?;
    let name = req.name.filter(|n| !n.is_empty()).ok_or_else(|| bad_request("the tag name is required"))?;
    let tag: Tag = name.parse().map_err(|e| bad_request(format!("invalid tag name: {e}")))?;
    let a = load(&state, &t, &reference).await?;
    match state.catalog.add_tag(&t.repo, &Reference::Digest(a.digest.clone()), &tag).await {
        Ok(()) => {}
        // The tag is taken: if immutable, say so (Harbor's 412), as a push over it would
        // be answered; otherwise Harbor's 409.
        Err(CatalogError::Conflict { .. }) => {
            crate::immutable::guard(&state, &t.repo, &[tag.as_str().to_owned()]).await?;
            return Err(conflict(format!("tag {tag} already exists in repository {}", t.repo)));
        }
        Err(CatalogError::NotFound) => return Err(not_found(format!("artifact {}@{} not found", t.repo, a.digest))),
        Err(CatalogError::Store(e)) => return Err(store(e)),
    }
    audit(&state, &caller, t.project.id, "create", "tag", &format!("{}:{tag}", t.repo)).await;
    let path = format!("{}/{tag}", uri.path().trim_end_matches('/'));
    Ok((StatusCode::CREATED, [location(&path)]).into_response())
}

pub async fn delete_tag(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference, tag)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::Tag, Action::Delete).await?;
    let name: Tag = tag.parse().map_err(|e| bad_request(format!("invalid tag name: {e}")))?;
    let a = load(&state, &t, &reference).await?;
    let missing = || not_found(format!("tag {name} of artifact {}@{} not found", t.repo, a.digest));
    if !a.tags.iter().any(|x| x.name == name.as_str()) {
        return Err(missing());
    }
    crate::immutable::guard(&state, &t.repo, &[name.as_str().to_owned()]).await?;
    match state.registry.delete_manifest(&t.repo, &Reference::Tag(name.clone())).await {
        Ok(()) => {}
        Err(CoreError::ManifestUnknown(_)) => return Err(missing()),
        Err(e) => return Err(e.into()),
    }
    audit(&state, &caller, t.project.id, "delete", "tag", &format!("{}:{name}", t.repo)).await;
    Ok(ok())
}

/// `GET …/artifacts/{reference}/additions/build_history` (Harbor's image processor): the
/// image config's `history` (`created`, `created_by`, `empty_layer`, …) as the config has
/// it, `[]` if it has none. Harbor answers 400 for artifacts that are not images.
pub async fn build_history(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r, reference)): ArtifactPath,
) -> Result<Response, ApiError> {
    let t = target(&state, &caller, p, &r, Resource::ArtifactAddition, Action::Read).await?;
    let a = load(&state, &t, &reference).await?;
    let parsed = parse_manifest(&state, &t.repo, &a.digest).await;
    let Some(config) = image_config_digest(&a.media_type, &parsed) else {
        return Err(bad_request(format!(
            "addition build_history isn't supported for {}({})",
            stored_kind(&a),
            a.media_type
        )));
    };
    let config = read_config(&state, &t.repo, &config)
        .await
        .ok_or_else(|| not_found(format!("the config of {}@{} cannot be read", t.repo, a.digest)))?;
    Ok(json(StatusCode::OK, &history_of(&config)))
}

/// The config's `history` list, `[]` when it has none (or not a list).
fn history_of(config: &Map<String, Value>) -> Value {
    match config.get("history") {
        Some(Value::Array(h)) => Value::Array(h.clone()),
        _ => Value::Array(Vec::new()),
    }
}

/// `from=` of a copy: `<project>/<repository>@<digest>` or `…:<tag>`.
fn copy_source(from: &str) -> Result<(&str, &str, &str), ApiError> {
    let invalid = || bad_request(format!("invalid from {from:?}: want <project>/<repository>@<digest> or :<tag>"));
    let (repo, reference) = match from.rsplit_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => {
            let (repo, tag) = from.rsplit_once(':').ok_or_else(invalid)?;
            if tag.contains('/') {
                return Err(invalid());
            }
            (repo, tag)
        }
    };
    let (project, rest) = repo.split_once('/').ok_or_else(invalid)?;
    if project.is_empty() || rest.is_empty() || reference.is_empty() {
        return Err(invalid());
    }
    Ok((project, rest, reference))
}

/// `POST /projects/{p}/repositories/{r}/artifacts?from=<project>/<repo>@<digest>` (or
/// `:<tag>`): Harbor's artifact copy. The caller needs to create artifacts in the
/// destination project and to pull from the source repository. The artifact (for an index
/// with its children) and its blobs are copied, its tags come along, and so do its
/// accessories, recursively, as in Harbor 2.8+ (`Registry::copy_manifest`); 201 with
/// `Location: …/artifacts/<digest>`, 409 if the destination already has it, 412 if one
/// of its tags is immutable in the destination and would move there.
pub async fn copy(
    State(state): State<AppState>,
    caller: Caller,
    Path((p, r)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let project = super::require_project(
        &state,
        &caller,
        &super::ProjectRef::Name(p.clone()),
        Resource::Artifact,
        Action::Create,
    )
    .await?;
    let q = ListQuery::parse(uri.query())?;
    let from = q.param("from").ok_or_else(|| bad_request("the from parameter is required"))?;
    let (src_project, src_repo, reference) = copy_source(from)?;
    let src = target(&state, &caller, src_project.to_owned(), src_repo, Resource::Repository, Action::Pull).await?;
    let a = load(&state, &src, reference).await?;
    let full = super::repositories::full_name(&project, &r)?;
    let dst: RepoName = full.parse().map_err(|e| bad_request(format!("invalid repository name {full:?}: {e}")))?;
    let exists = || conflict(format!("the artifact {dst}@{} already exists", a.digest));
    if state.catalog.artifact(&dst, &Reference::Digest(a.digest.clone())).await.map_err(store)?.is_some() {
        return Err(exists());
    }
    let tags: Vec<Tag> = a.tags.iter().filter_map(|t| t.name.parse().ok()).collect();
    let mut moving = Vec::new();
    for tag in &tags {
        if state.catalog.artifact(&dst, &Reference::Tag(tag.clone())).await.map_err(store)?.is_some() {
            moving.push(tag.as_str().to_owned());
        }
    }
    crate::immutable::guard(&state, &dst, &moving).await?;
    let copied = state.registry.copy_manifest(&src.repo, &dst, &a.digest, &tags, Some(caller.0.name())).await?;
    if !copied {
        return Err(exists());
    }
    state.events.committed();
    audit(&state, &caller, project.id, "create", "artifact", &format!("{dst}@{}", a.digest)).await;
    let path = format!("{}/{}", uri.path().trim_end_matches('/'), a.digest);
    Ok((StatusCode::CREATED, [location(&path)]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(artifact_kind(OCI_CONFIG), "IMAGE");
        assert_eq!(artifact_kind(DOCKER_CONFIG), "IMAGE");
        assert_eq!(artifact_kind("application/vnd.oci.image.index.v1+json"), "IMAGE");
        assert_eq!(artifact_kind(HELM_CONFIG), "CHART");
        assert_eq!(artifact_kind("application/vnd.caicloud.model.config.v1alpha1+json"), "MODEL");
        assert_eq!(artifact_kind("application/vnd.a.b.c.config.v1+json"), "B.C");
        assert_eq!(artifact_kind("application/vnd.oci.empty.v1+json"), "UNKNOWN");
        assert_eq!(artifact_kind("text/plain"), "UNKNOWN");
    }

    #[test]
    fn copy_sources_and_history() {
        assert_eq!(copy_source("p/a/b@sha256:ab").unwrap(), ("p", "a/b", "sha256:ab"));
        assert_eq!(copy_source("p/app:v1").unwrap(), ("p", "app", "v1"));
        for bad in ["app:v1", "p/app", "/app:v1", "p/:v1", "p/app@", "host:5000/app"] {
            assert!(copy_source(bad).is_err(), "{bad}");
        }
        let config: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "history": [{"created_by": "RUN a"}, {"created_by": "ENV b", "empty_layer": true}]
        }))
        .unwrap();
        assert_eq!(history_of(&config)[1]["empty_layer"], true);
        assert_eq!(history_of(&Map::new()), serde_json::json!([]));
    }

    #[test]
    fn image_attrs_fall_back_to_author_labels() {
        let config: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "architecture": "arm64", "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": {"Labels": {"maintainer": "ops@example.com"}}
        }))
        .unwrap();
        let a = image_attrs(&config);
        assert_eq!(a["architecture"], "arm64");
        assert_eq!(a["author"], "ops@example.com");
        assert_eq!(a["created"], "2024-01-02T03:04:05Z");
        let a = image_attrs(&Map::new());
        assert_eq!(a["created"], Value::Null);
        assert_eq!(a["config"], serde_json::json!({}));
    }
}
