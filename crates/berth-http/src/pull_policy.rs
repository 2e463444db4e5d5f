//! Accessories (signatures, SBOMs) of an artifact, their signed/verified state, and
//! Harbor's pull policies checked on every manifest GET:
//! - `enable_content_trust_cosign`: a cosign signature is required ("The image is not
//!   signed by cosign."), `enable_content_trust`: a Notation one ("… by notation."); both
//!   Harbor's 412 `PROJECTPOLICYVIOLATION`. Harbor only checks that a signature exists,
//!   and so does Berth for a project without trust configured; once the project has keys
//!   or roots of that kind (`/projects/{p}/signature-trust`), only a signature that
//!   verifies against them counts.
//! - `prevent_vul` + `severity`: asked of the [`VulnerabilityGate`] a scanner installs.
//!
//! Checked on GET and HEAD, as Harbor. Exempt, as in Harbor: callers holding
//! `scanner-pull` (scanners' robots), and pulls of accessories themselves (a verifier
//! must fetch the signature). Berth's differences: a HEAD by a caller who may push passes
//! (signers resolve what they sign; Harbor's equivalent trusted `User-Agent: cosign`,
//! which any client can send), and a child manifest of a signed index passes (clients
//! pull a multi-arch image's children by digest after resolving the index).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use berth_core::pull_policy::{Severity, VulnerabilityGate, refusal};
use berth_core::store::StoreResult;
use berth_core::{CoreError, Digest, Reference, RepoName, Tag};
use berth_signature::accessory::AccessoryKind;
use berth_signature::trust::TrustDoc;
use berth_signature::{Trust, VerifyError, classify, cosign, cosign_tag_for, notation};

use crate::AppState;
use crate::error::ApiError;

/// The policy kind (in the policy store) of a project's signature trust document.
pub const TRUST_KIND: &str = "signature-trust";
/// How long a project's policy flags and trust are remembered: a change made on any
/// instance is in force everywhere within this (as runtime settings are).
const CACHE_FOR: Duration = Duration::from_secs(2);
/// Signature payloads and envelopes larger than this are not read.
const MAX_SIGNATURE_BYTES: u64 = 1 << 20;

/// A project's pull policies.
#[derive(Debug, Clone, Default)]
pub struct ProjectPolicy {
    pub project_id: i64,
    pub cosign: bool,
    pub notation: bool,
    pub prevent_vul: Option<Severity>,
    pub trust: Arc<Trust>,
    /// The CVE allowlist in force (the system's or the project's), read with the flags.
    pub allowlist: Arc<berth_core::cve_allowlist::CveAllowlist>,
}

impl ProjectPolicy {
    fn any(&self) -> bool {
        self.cosign || self.notation || self.prevent_vul.is_some()
    }
}

/// The pull-policy state every request shares: the installed vulnerability gate and a
/// short cache of projects' policies.
#[derive(Default)]
pub struct PullPolicy {
    gate: RwLock<Option<Arc<dyn VulnerabilityGate>>>,
    cache: Mutex<HashMap<String, (Instant, Option<ProjectPolicy>)>>,
}

impl PullPolicy {
    /// Installs the scanner's judgement for `prevent_vul` (replacing any earlier one).
    pub fn set_vulnerability_gate(&self, gate: Arc<dyn VulnerabilityGate>) {
        *self.gate.write().expect("gate lock") = Some(gate);
    }

    fn gate(&self) -> Option<Arc<dyn VulnerabilityGate>> {
        self.gate.read().expect("gate lock").clone()
    }

    /// Forgets every project's cached policy (after a change of the system's CVE
    /// allowlist on this instance).
    pub fn forget_all(&self) {
        self.cache.lock().expect("cache lock").clear();
    }

    /// Forgets a project's cached policy (after a change on this instance).
    pub fn forget(&self, project: &str) {
        self.cache.lock().expect("cache lock").remove(project);
    }

    async fn project(&self, state: &AppState, name: &str) -> Result<Option<ProjectPolicy>, ApiError> {
        if let Some((at, p)) = self.cache.lock().expect("cache lock").get(name)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(p.clone());
        }
        let project = state.auth.identity.project_by_name(name).await.map_err(CoreError::Store)?;
        let policy = match project {
            None => None,
            Some(p) => {
                let flag = |k: &str| p.metadata.get(k).is_some_and(|v| v == "true");
                let prevent_vul = flag("prevent_vul")
                    .then(|| p.metadata.get("severity").and_then(|s| Severity::parse(s)).unwrap_or(Severity::Low));
                Some(ProjectPolicy {
                    project_id: p.id,
                    cosign: flag("enable_content_trust_cosign"),
                    notation: flag("enable_content_trust"),
                    prevent_vul,
                    trust: Arc::new(load_trust(state, p.id).await.map_err(CoreError::Store)?.1),
                    allowlist: Arc::new(
                        berth_core::cve_allowlist::effective(state.policies.as_ref(), p.id, &p.metadata)
                            .await
                            .map_err(CoreError::Store)?,
                    ),
                })
            }
        };
        self.cache.lock().expect("cache lock").insert(name.to_string(), (Instant::now(), policy.clone()));
        Ok(policy)
    }
}

/// A project's stored trust document (empty if none) and its compiled form. A stored
/// document that no longer compiles (it was checked when written) trusts nothing.
pub async fn load_trust(state: &AppState, project_id: i64) -> StoreResult<(TrustDoc, Trust)> {
    let stored = state.policies.policies(TRUST_KIND, project_id).await?;
    let doc = stored.last().and_then(|p| serde_json::from_str::<TrustDoc>(&p.body).ok()).unwrap_or_default();
    let trust = doc.compile().unwrap_or_else(|e| {
        tracing::warn!(project_id, error = %e, "stored signature trust does not compile; trusting nothing");
        Trust::default()
    });
    Ok((doc, trust))
}

/// One accessory of a subject.
#[derive(Debug, Clone)]
pub struct Found {
    pub kind: AccessoryKind,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// The accessories of `subject` in `repo`: its cosign `.sig` tag, and every manifest
/// whose `subject` it is.
pub async fn accessories(state: &AppState, repo: &RepoName, subject: &Digest) -> Result<Vec<Found>, ApiError> {
    let mut cosign = None;
    if let Some(tag) = cosign_tag_for(&subject.to_string()).and_then(|t| t.parse::<Tag>().ok())
        && let Some(m) =
            state.registry.meta().get_manifest(repo, &Reference::Tag(tag)).await.map_err(CoreError::Store)?
    {
        cosign = Some(Found {
            kind: AccessoryKind::CosignSignature,
            size: m.content.len() as u64,
            digest: m.digest,
            media_type: m.media_type,
        });
    }
    Ok(accessories_from(cosign, state.registry.referrers(repo, subject, None).await?))
}

/// The accessories of a subject from what the store found: the manifest its cosign
/// `.sig` tag names (as a cosign signature), then its referrers, classified.
pub fn accessories_from(cosign: Option<Found>, referrers: Vec<berth_core::store::Referrer>) -> Vec<Found> {
    let mut out: Vec<Found> = cosign.into_iter().collect();
    for r in referrers {
        if out.iter().any(|f| f.digest == r.digest) {
            continue;
        }
        let kind = classify(r.artifact_type.as_deref(), true, []).unwrap_or(AccessoryKind::Subject);
        out.push(Found { kind, digest: r.digest, media_type: r.media_type, size: r.size });
    }
    out
}

/// Where an artifact stands for one kind of signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignState {
    /// No signature of the kind.
    Unsigned,
    /// Signed; the project configures no trust of the kind, so nothing was verified.
    Signed,
    /// A signature verified against the project's trust.
    Verified,
    /// Signed, but none of the signatures verifies against the project's trust.
    Unverified,
}

impl SignState {
    pub fn as_str(self) -> &'static str {
        match self {
            SignState::Unsigned => "unsigned",
            SignState::Signed => "signed",
            SignState::Verified => "verified",
            SignState::Unverified => "unverified",
        }
    }

    /// Whether the content-trust policy lets the artifact through.
    pub fn passes(self) -> bool {
        matches!(self, SignState::Signed | SignState::Verified)
    }
}

async fn read_small_blob(state: &AppState, repo: &RepoName, digest: &str) -> Option<Vec<u8>> {
    let d: Digest = digest.parse().ok()?;
    let blob = state.registry.open_blob(repo, &d, None).await.ok()?;
    if blob.info.size > MAX_SIGNATURE_BYTES {
        return None;
    }
    let mut body = blob.reader.body;
    let mut buf = Vec::with_capacity(blob.info.size as usize);
    while let Some(chunk) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
        buf.extend_from_slice(&chunk.ok()?);
        if buf.len() as u64 > MAX_SIGNATURE_BYTES {
            return None;
        }
    }
    Some(buf)
}

/// Whether one signature accessory verifies for `subject` under `trust`.
async fn verifies(state: &AppState, repo: &RepoName, subject: &Digest, f: &Found, trust: &Trust) -> bool {
    let Ok(m) = state.registry.manifest(repo, &Reference::Digest(f.digest.clone())).await else { return false };
    let subject = subject.to_string();
    let result: Result<String, VerifyError> = match f.kind {
        AccessoryKind::CosignSignature => {
            let mut last =
                Err(VerifyError::Malformed("no simple-signing layer (Sigstore bundles are not verified)".into()));
            for layer in cosign::signature_layers(&m.content) {
                let Some(payload) = read_small_blob(state, repo, &layer.payload_digest).await else { continue };
                last = cosign::verify(&payload, &layer.signature, &subject, &trust.cosign);
                if last.is_ok() {
                    break;
                }
            }
            last
        }
        AccessoryKind::NotationSignature => match notation::envelope_layer(&m.content) {
            Some(d) => match read_small_blob(state, repo, &d).await {
                Some(env) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    notation::verify_jws(&env, &subject, &trust.notation, now)
                }
                None => Err(VerifyError::Malformed("envelope blob unreadable".into())),
            },
            None => Err(VerifyError::Malformed("no JWS envelope layer (COSE is not verified)".into())),
        },
        _ => return false,
    };
    match result {
        Ok(by) => {
            tracing::debug!(%repo, %subject, signature = %f.digest, %by, "signature verified");
            true
        }
        Err(e) => {
            tracing::info!(%repo, %subject, signature = %f.digest, error = %e, "signature does not verify");
            false
        }
    }
}

/// The state of `kind` signatures among `found` for `subject`.
pub async fn sign_state(
    state: &AppState,
    repo: &RepoName,
    subject: &Digest,
    found: &[Found],
    kind: AccessoryKind,
    trust: &Trust,
) -> SignState {
    let sigs: Vec<&Found> = found.iter().filter(|f| f.kind == kind).collect();
    if sigs.is_empty() {
        return SignState::Unsigned;
    }
    let configured = match kind {
        AccessoryKind::CosignSignature => !trust.cosign.is_empty(),
        _ => !trust.notation.is_empty(),
    };
    if !configured {
        return SignState::Signed;
    }
    for f in sigs {
        if verifies(state, repo, subject, f, trust).await {
            return SignState::Verified;
        }
    }
    SignState::Unverified
}

/// The signed state for the artifact JSON (`with_accessory=true`): cosign and Notation.
pub async fn signature_json(state: &AppState, repo: &RepoName, subject: &Digest, found: &[Found]) -> serde_json::Value {
    let trust = project_trust(state, repo).await;
    signature_with(state, repo, subject, found, &trust).await
}

/// [`signature_json`] of many subjects of one repository, the project's trust read once.
pub async fn signatures_json(
    state: &AppState,
    repo: &RepoName,
    subjects: &[(Digest, Vec<Found>)],
) -> Vec<serde_json::Value> {
    let trust = project_trust(state, repo).await;
    let mut out = Vec::with_capacity(subjects.len());
    for (subject, found) in subjects {
        out.push(signature_with(state, repo, subject, found, &trust).await);
    }
    out
}

async fn project_trust(state: &AppState, repo: &RepoName) -> Arc<Trust> {
    match project_policy(state, repo).await {
        Ok(Some(p)) => p.trust,
        _ => Arc::new(Trust::default()),
    }
}

async fn signature_with(
    state: &AppState,
    repo: &RepoName,
    subject: &Digest,
    found: &[Found],
    trust: &Trust,
) -> serde_json::Value {
    let cosign = sign_state(state, repo, subject, found, AccessoryKind::CosignSignature, trust).await;
    let notation = sign_state(state, repo, subject, found, AccessoryKind::NotationSignature, trust).await;
    serde_json::json!({
        "signed": cosign != SignState::Unsigned || notation != SignState::Unsigned,
        "cosign": cosign.as_str(),
        "notation": notation.as_str(),
    })
}

async fn project_policy(state: &AppState, repo: &RepoName) -> Result<Option<ProjectPolicy>, ApiError> {
    let Some(project) = berth_core::access::project_of(repo.as_str()) else { return Ok(None) };
    state.pull_policy.project(state, project).await
}

fn violation(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PRECONDITION_FAILED, "PROJECTPOLICYVIOLATION", message)
}

/// Harbor's pull policies for a manifest GET of `digest` (asked for as `reference`, with
/// `content` the manifest's bytes). `Ok` lets the pull go on.
pub async fn check_pull(
    state: &AppState,
    repo: &RepoName,
    reference: &Reference,
    digest: &Digest,
    content: &[u8],
    h: &HeaderMap,
    head: bool,
) -> Result<(), ApiError> {
    let Some(policy) = project_policy(state, repo).await? else { return Ok(()) };
    if !policy.any() {
        return Ok(());
    }
    // Accessories themselves: a `subject`, or cosign's signature tag.
    let has_subject = serde_json::from_slice::<serde_json::Value>(content).is_ok_and(|v| v.get("subject").is_some());
    let sig_tag = matches!(reference, Reference::Tag(t) if berth_signature::cosign_tag_subject(t.as_str()).is_some());
    if has_subject || sig_tag {
        return Ok(());
    }
    if state.auth.holds_scanner_pull(h, repo).await {
        return Ok(());
    }
    // A HEAD transfers no content; signers (cosign, notation) resolve what they sign with
    // it, so callers who may push are let through. Their GETs are checked like anyone's.
    if head {
        let push = crate::auth::Access::Repository { name: repo.clone(), actions: vec![crate::auth::Action::Push] };
        if state.auth.authorize_v2(h, &push, "").await.is_ok() {
            return Ok(());
        }
    }
    if policy.cosign || policy.notation {
        let wanted = [
            (policy.cosign, AccessoryKind::CosignSignature, "The image is not signed by cosign."),
            (policy.notation, AccessoryKind::NotationSignature, "The image is not signed by notation."),
        ];
        let found = accessories(state, repo, digest).await?;
        for (on, kind, message) in wanted {
            if on && !signed_or_parent_signed(state, repo, digest, &found, kind, &policy.trust).await? {
                return Err(violation(message));
            }
        }
    }
    // An index is not scanned itself (its images are, and are checked when pulled).
    let is_index = serde_json::from_slice::<serde_json::Value>(content).is_ok_and(|v| v.get("manifests").is_some());
    if let Some(threshold) = policy.prevent_vul
        && !is_index
        && let Some(gate) = state.pull_policy.gate()
    {
        let allowed = policy.allowlist.active(crate::auth::unix_now());
        let verdict = gate
            .verdict(repo, digest, threshold, &allowed)
            .await
            .map_err(|e| ApiError::internal_error(format!("vulnerability check of {repo}@{digest} failed: {e}")))?;
        if let Some(message) = refusal(&verdict, threshold) {
            return Err(violation(message));
        }
    }
    Ok(())
}

/// Whether `digest` passes for `kind`, itself or through an index of the repository that
/// lists it and passes.
async fn signed_or_parent_signed(
    state: &AppState,
    repo: &RepoName,
    digest: &Digest,
    found: &[Found],
    kind: AccessoryKind,
    trust: &Trust,
) -> Result<bool, ApiError> {
    if sign_state(state, repo, digest, found, kind, trust).await.passes() {
        return Ok(true);
    }
    let all_pages = berth_core::store::identity::Page { page: 1, page_size: u64::MAX };
    let all =
        state.catalog.list_artifacts(repo, &all_pages, false).await.map_err(CoreError::Store)?.unwrap_or_default().0;
    for parent in all.iter().filter(|a| a.references.iter().any(|r| &r.child_digest == digest)) {
        let pf = accessories(state, repo, &parent.digest).await?;
        if sign_state(state, repo, &parent.digest, &pf, kind, trust).await.passes() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether a listed artifact is an accessory (hidden from the top-level list, as Harbor).
pub fn is_accessory(a: &berth_core::store::catalog::ArtifactInfo) -> bool {
    classify(a.artifact_type.as_deref(), a.subject_digest.is_some(), a.tags.iter().map(|t| t.name.as_str())).is_some()
}
