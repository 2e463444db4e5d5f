//! Manifest parsing and validation. The bytes a client sent are stored as they are;
//! this module only extracts what the registry must know about them: the media type,
//! the blobs and child manifests they reference, the subject and the artifact type.

use serde::Deserialize;
use serde_json::Value;

use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const DOCKER_FOREIGN_LAYERS: [&str; 2] = [
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar",
];
const OCI_NONDISTRIBUTABLE_PREFIX: &str = "application/vnd.oci.image.layer.nondistributable.";

/// Largest manifest accepted, in bytes: the same 4 MiB limit as the CNCF Distribution
/// registry and the OCI spec's recommendation, so anything one accepts the other does.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Every manifest media type Berth stores, in the order it prefers when a client accepts several.
pub const SUPPORTED_TYPES: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Image,
    Index,
}

/// A content descriptor as it appears inside a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// What the registry needs to know about a manifest.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub media_type: String,
    pub kind: Kind,
    /// Blobs that must exist in the repository (config and layers).
    pub blobs: Vec<Descriptor>,
    /// Manifests that must exist in the repository (children of an index).
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// `artifactType`, or for an image manifest without one, its config media type,
    /// as the referrers API reports it.
    pub artifact_type: Option<String>,
    /// The manifest's annotations as JSON text, kept for the referrers API.
    pub annotations: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("Docker schema 1 manifests are not supported; push with a current client (it converts to schema 2 or OCI)")]
    Schema1,
    #[error("manifest media type {0:?} is not supported")]
    UnsupportedType(String),
    #[error("manifest mediaType {body:?} does not match Content-Type {header:?}")]
    TypeMismatch { body: String, header: String },
    #[error("manifest field {field}: {problem}")]
    Field { field: String, problem: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Value>,
}

fn field(field: impl Into<String>, problem: impl Into<String>) -> ManifestError {
    ManifestError::Field { field: field.into(), problem: problem.into() }
}

fn descriptor(raw: &RawDescriptor, at: &str) -> Result<Descriptor, ManifestError> {
    let media_type = raw.media_type.clone().ok_or_else(|| field(format!("{at}.mediaType"), "is required"))?;
    let digest = raw.digest.as_deref().ok_or_else(|| field(format!("{at}.digest"), "is required"))?;
    let digest = digest.parse::<Digest>().map_err(|e| field(format!("{at}.digest"), e.to_string()))?;
    let size = raw.size.ok_or_else(|| field(format!("{at}.size"), "is required"))?;
    let size = u64::try_from(size).map_err(|_| field(format!("{at}.size"), "must not be negative"))?;
    Ok(Descriptor { media_type, digest, size })
}

/// A layer that by design lives elsewhere and need not be in the registry.
fn is_foreign(raw: &RawDescriptor) -> bool {
    let mt = raw.media_type.as_deref().unwrap_or("");
    !raw.urls.is_empty() && (DOCKER_FOREIGN_LAYERS.contains(&mt) || mt.starts_with(OCI_NONDISTRIBUTABLE_PREFIX))
}

/// Parses a manifest as received. `content_type` is the request's Content-Type, used
/// when the manifest has no `mediaType` field.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge);
    }
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let header = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");

    if raw.schema_version == Some(1)
        || matches!(raw.media_type.as_deref().or(header), Some(DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED))
    {
        return Err(ManifestError::Schema1);
    }
    if raw.schema_version != Some(2) {
        return Err(field("schemaVersion", "must be 2"));
    }
    let media_type = match (&raw.media_type, header) {
        (Some(body), Some(h)) if body != h => {
            return Err(ManifestError::TypeMismatch { body: body.clone(), header: h.to_string() });
        }
        (Some(body), _) => body.clone(),
        (None, Some(h)) => h.to_string(),
        // Neither says: infer from the shape, as OCI allows mediaType to be omitted.
        (None, None) if raw.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) => OCI_MANIFEST.to_string(),
    };
    let kind = match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Image,
        OCI_INDEX | DOCKER_LIST => Kind::Index,
        other => return Err(ManifestError::UnsupportedType(other.to_string())),
    };

    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    let mut artifact_type = raw.artifact_type.clone();
    match kind {
        Kind::Image => {
            let config = raw.config.as_ref().ok_or_else(|| field("config", "is required in an image manifest"))?;
            let config = descriptor(config, "config")?;
            let layers = raw.layers.as_ref().ok_or_else(|| field("layers", "is required in an image manifest"))?;
            if raw.manifests.is_some() {
                return Err(field("manifests", "is not allowed in an image manifest"));
            }
            if artifact_type.is_none() {
                artifact_type = Some(config.media_type.clone());
            }
            blobs.push(config);
            for (i, l) in layers.iter().enumerate() {
                let d = descriptor(l, &format!("layers[{i}]"))?;
                if !is_foreign(l) {
                    blobs.push(d);
                }
            }
        }
        Kind::Index => {
            let list = raw.manifests.as_ref().ok_or_else(|| field("manifests", "is required in an image index"))?;
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(field("config", "config and layers are not allowed in an image index"));
            }
            for (i, m) in list.iter().enumerate() {
                manifests.push(descriptor(m, &format!("manifests[{i}]"))?);
            }
        }
    }
    let subject = raw.subject.as_ref().map(|s| descriptor(s, "subject")).transpose()?;
    let annotations = match &raw.annotations {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(m)) => {
            if m.values().any(|x| !x.is_string()) {
                return Err(field("annotations", "values must be strings"));
            }
            Some(v.to_string())
        }
        Some(_) => return Err(field("annotations", "must be an object of strings")),
    };
    Ok(Parsed { media_type, kind, blobs, manifests, subject, artifact_type, annotations })
}

/// Picks the media type to answer with from a client's `Accept` header lines, or `None`
/// if the client accepts none of the stored type. Clients send one line per type or
/// several comma-separated; no Accept at all means "anything".
pub fn accepts(accept_lines: &[&str], stored: &str) -> bool {
    let mut any_line = false;
    for line in accept_lines {
        for item in line.split(',') {
            let t = item.split(';').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            any_line = true;
            if t == stored || t == "*/*" || t == "application/*" || t == "application/json" {
                return true;
            }
        }
    }
    !any_line
}

#[cfg(test)]
mod tests;
