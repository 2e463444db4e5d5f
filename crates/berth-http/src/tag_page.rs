//! What the web UI's tags view shows of a page of tags beyond the tag rows, read for the
//! whole page at once with the rules the API itself uses: each artifact's Harbor size and
//! (for an index) its platforms, its vulnerability overview (as the artifact JSON's
//! `scan_overview` entry), its signed state (the artifact JSON's `signature`), its kind,
//! an image's own platform, and which tags the project's immutability rules protect. One
//! catalog read
//! ([`CatalogStore::page_details`](berth_core::store::catalog::CatalogStore::page_details)),
//! one read of scan reports, one of the rules; nothing per row, except verifying
//! signatures against a project's configured trust (the domain rule, as the API does) and
//! reading the page's images' configs for their platforms (the catalog does not keep
//! them), at most one per distinct image of the page, concurrently.

use std::collections::{HashMap, HashSet};

use berth_core::policy::{immutable, immutable_rules};
use berth_core::store::StoreError;
use berth_core::store::catalog::{TagKind, TagRow};
use berth_core::{Digest, RepoName};
use berth_scanning::scan::ScanType;
use berth_signature::accessory::AccessoryKind;
use berth_signature::cosign_tag_for;
use serde_json::Value;

use crate::AppState;
use crate::pull_policy::{Found, accessories_from, signatures_json};

/// One artifact of the page.
#[derive(Debug, Clone, Default)]
pub struct ArtifactDetails {
    /// Harbor's size: the manifest plus its blobs, an index plus its children.
    pub size: u64,
    /// An index's platforms, in its order, or an image's own (from its config):
    /// `os/architecture[/variant]`.
    pub platforms: Vec<String>,
    /// What kind of artifact it is (`None` if it left the repository meanwhile).
    pub kind: Option<TagKind>,
    /// Harbor's `scan_overview` entry (status, severity, summary), if it was scanned.
    pub scan: Option<Value>,
    /// Harbor's `signature`: `{"signed", "cosign", "notation"}`.
    pub signature: Value,
}

/// The page's details: by digest, and the tags the project's rules make immutable.
#[derive(Debug, Clone, Default)]
pub struct PageDetails {
    pub artifacts: HashMap<String, ArtifactDetails>,
    pub immutable: HashSet<String>,
}

/// `os/architecture[/variant]` of an index entry's platform.
pub fn platform_name(p: &Value) -> Option<String> {
    let (os, arch) = (p["os"].as_str()?, p["architecture"].as_str()?);
    Some(match p["variant"].as_str() {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

/// The details of `rows` (a page of `repo`'s tags, in project `project_id`). `None` if
/// the repository is gone.
pub async fn details(
    state: &AppState,
    repo: &RepoName,
    project_id: i64,
    rows: &[TagRow],
) -> Result<Option<PageDetails>, StoreError> {
    let mut digests: Vec<Digest> = rows.iter().map(|r| r.digest.clone()).collect();
    digests.sort_by_key(ToString::to_string);
    digests.dedup();
    let sig_tags: Vec<String> = digests.iter().filter_map(|d| cosign_tag_for(&d.to_string())).collect();
    let Some(found) = state.catalog.page_details(repo, &digests, &sig_tags).await? else { return Ok(None) };
    let names: Vec<String> = digests.iter().map(ToString::to_string).collect();
    let reports = state.scans.reports(&names, ScanType::Vulnerability).await?;
    let mut referrers: HashMap<String, Vec<berth_core::store::Referrer>> = HashMap::new();
    for (subject, r) in found.referrers {
        referrers.entry(subject.to_string()).or_default().push(r);
    }
    let mut tagged: HashMap<String, berth_core::store::Referrer> = found.tagged.into_iter().collect();
    let subjects: Vec<(Digest, Vec<Found>)> = digests
        .iter()
        .map(|d| {
            let cosign = cosign_tag_for(&d.to_string()).and_then(|t| tagged.remove(&t)).map(|m| Found {
                kind: AccessoryKind::CosignSignature,
                digest: m.digest,
                media_type: m.media_type,
                size: m.size,
            });
            (d.clone(), accessories_from(cosign, referrers.remove(&d.to_string()).unwrap_or_default()))
        })
        .collect();
    let signatures = signatures_json(state, repo, &subjects).await;
    let mut own_platforms = image_platforms(state, repo, &found.artifacts).await;
    let mut out = PageDetails::default();
    for ((d, _), signature) in subjects.iter().zip(signatures) {
        let key = d.to_string();
        let info = found.artifacts.iter().find(|a| a.digest == *d);
        out.artifacts.insert(
            key.clone(),
            ArtifactDetails {
                size: info.map_or(0, |a| a.size),
                platforms: match own_platforms.remove(&key) {
                    Some(own) => vec![own],
                    None => info
                        .into_iter()
                        .flat_map(|a| &a.references)
                        .filter_map(|r| r.platform.as_ref().and_then(platform_name))
                        .filter(|p| p != "unknown/unknown")
                        .collect(),
                },
                kind: info.map(|a| TagKind::of(&a.media_type, a.artifact_type.as_deref())),
                scan: reports.get(&key).map(berth_scanning::scan::overview),
                signature,
            },
        );
    }
    let rules = immutable_rules(state.policies.as_ref(), project_id).await?;
    let rest = repo.as_str().split_once('/').map_or(repo.as_str(), |(_, r)| r);
    out.immutable =
        rows.iter().filter(|r| immutable(&rules, rest, &r.name).is_some()).map(|r| r.name.clone()).collect();
    Ok(Some(out))
}

/// The own platforms of the images among `artifacts` (a page's distinct artifacts, so at
/// most a page's worth of config reads), by digest, read concurrently with the artifact
/// JSON's rule (`image_platform`).
async fn image_platforms(
    state: &AppState,
    repo: &RepoName,
    artifacts: &[berth_core::store::catalog::ArtifactInfo],
) -> HashMap<String, String> {
    let mut reads = tokio::task::JoinSet::new();
    for a in artifacts.iter().filter(|a| TagKind::of(&a.media_type, a.artifact_type.as_deref()) == TagKind::Image) {
        let (state, repo, digest, media_type) = (state.clone(), repo.clone(), a.digest.clone(), a.media_type.clone());
        reads.spawn(async move {
            let p = crate::harbor::artifacts::image_platform(&state, &repo, &digest, &media_type).await;
            (digest.to_string(), p)
        });
    }
    let mut out = HashMap::new();
    while let Some(done) = reads.join_next().await {
        if let Ok((d, Some(p))) = done {
            out.insert(d, p);
        }
    }
    out
}
