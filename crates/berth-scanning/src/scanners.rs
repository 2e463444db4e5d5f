//! Scanner registrations (Harbor's `scanner_registration`) and the client side of Harbor's
//! Pluggable Scanner API v1.1 (goharbor/pluggable-scanner-spec; Harbor's
//! `src/pkg/scan/rest/v1`): `GET /api/v1/metadata`, `POST /api/v1/scan`,
//! `GET /api/v1/scan/{id}/report`.
//!
//! Registrations are [`PolicyStore`] documents (kind [`REGISTRATION_KIND`], project 0),
//! their adapter credential encrypted with the cluster secret key like registry
//! credentials. Berth's built-in scanner is a registration too, never stored: it is the
//! default unless another one was made the default, and it cannot be deleted. A project's
//! choice is a document of kind [`PROJECT_SCANNER_KIND`] in that project.

use std::sync::Arc;
use std::time::Duration;

use berth_core::store::StoreError;
use berth_core::store::policies::{PolicyStore, StoredPolicy};
use berth_secret::SecretKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scan::{BUILTIN_NAME, BUILTIN_UUID};

/// The [`PolicyStore`] kind of registration documents.
pub const REGISTRATION_KIND: &str = "scanner-registration";
/// The [`PolicyStore`] kind of a project's chosen scanner (`{"uuid": …}`).
pub const PROJECT_SCANNER_KIND: &str = "project-scanner";

/// The adapter API's MIME types (Harbor's `src/pkg/scan/rest/v1/spec.go`).
pub const MIME_METADATA: &str = "application/vnd.scanner.adapter.metadata+json; version=1.0";
pub const MIME_SCAN_REQUEST: &str = "application/vnd.scanner.adapter.scan.request+json; version=1.0";
pub const MIME_SCAN_RESPONSE: &str = "application/vnd.scanner.adapter.scan.response+json; version=1.0";
pub const MIME_ERROR: &str = "application/vnd.scanner.adapter.error+json; version=1.0";
/// The SBOM capability's report type.
pub const MIME_SBOM: &str = "application/vnd.security.sbom.report+json; version=1.0";

/// How Berth authenticates to an adapter, as Harbor's `auth` names it.
pub const AUTH_TYPES: [&str; 3] = ["Basic", "Bearer", "X-ScannerAdapter-API-Key"];

/// A registration's stored document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationDoc {
    pub uuid: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub url: String,
    /// Empty (none) or one of [`AUTH_TYPES`].
    #[serde(default)]
    pub auth: String,
    /// Encrypted (`<berth-gcm>…`); empty when there is none.
    #[serde(default)]
    pub access_credential: String,
    #[serde(default)]
    pub skip_cert_verify: bool,
    #[serde(default)]
    pub use_internal_addr: bool,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The document's id (0 for the built-in scanner).
    pub id: i64,
    pub doc: RegistrationDoc,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Registration {
    pub fn is_builtin(&self) -> bool {
        self.doc.uuid == BUILTIN_UUID
    }
}

/// A registration as a client gives it, credential in plain text.
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput {
    pub name: String,
    pub description: String,
    pub url: String,
    pub auth: String,
    /// `None` or empty: keep the stored credential (Harbor's PUT), unless `auth` is empty.
    pub access_credential: Option<String>,
    pub skip_cert_verify: bool,
    pub use_internal_addr: bool,
    pub disabled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScannerError {
    /// A field is invalid: (field, message).
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    /// A name or URL already registered.
    #[error("{0}")]
    Conflict(String),
    #[error("scanner registration {0} not found")]
    NotFound(String),
    /// A change Harbor refuses (deleting the default or built-in scanner).
    #[error("{0}")]
    Refused(String),
    #[error("the stored credential of scanner {0} cannot be read: {1}")]
    Secret(String, String),
    /// The adapter did not answer as the API says.
    #[error("scanner adapter: {0}")]
    Adapter(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a registration as given (400s name the field).
pub fn validate(input: &RegistrationInput) -> Result<(), ScannerError> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(ScannerError::Invalid("name", "is required".into()));
    }
    if name.len() > 255 {
        return Err(ScannerError::Invalid("name", "must be at most 255 characters".into()));
    }
    if name == BUILTIN_NAME {
        return Err(ScannerError::Invalid("name", format!("{name:?} is reserved, please try a different name")));
    }
    check_endpoint(input)
}

/// Whether `url` is an absolute http(s) URL with a host.
pub fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.trim_matches('/').is_empty() && !r.contains(char::is_whitespace))
}

/// The adapter's URL and authentication type (what a ping needs too).
fn check_endpoint(input: &RegistrationInput) -> Result<(), ScannerError> {
    let url = input.url.trim();
    if !is_http_url(url) {
        return Err(ScannerError::Invalid("url", format!("{url:?} is not an http:// or https:// URL")));
    }
    if !input.auth.is_empty() && !AUTH_TYPES.contains(&input.auth.as_str()) {
        return Err(ScannerError::Invalid(
            "auth",
            format!("{:?} is not supported; use one of {} or leave it empty", input.auth, AUTH_TYPES.join(", ")),
        ));
    }
    Ok(())
}

/// Harbor's `ScannerAdapterMetadata`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AdapterMetadata {
    pub scanner: ScannerInfo,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub properties: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScannerInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub version: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Capability {
    /// `vulnerability` or `sbom` (v1.1; absent in v1.0 adapters, which scan for
    /// vulnerabilities).
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default)]
    pub consumes_mime_types: Vec<String>,
    #[serde(default)]
    pub produces_mime_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_attributes: Option<Value>,
}

impl AdapterMetadata {
    /// The report MIME type to ask for: for a vulnerability scan the first of Harbor's
    /// vulnerability report types the adapter produces (1.1 before the native 1.0), for an
    /// SBOM the SBOM report type; `None` if it produces neither for `manifest_type`.
    pub fn report_mime(&self, sbom: bool, manifest_type: &str) -> Option<&'static str> {
        let wanted: &[&'static str] =
            if sbom { &[MIME_SBOM] } else { &[crate::scan::MIME_REPORT_1_1, crate::scan::MIME_REPORT_NATIVE] };
        let consumes = |c: &Capability| {
            c.consumes_mime_types.is_empty() || c.consumes_mime_types.iter().any(|m| m == manifest_type)
        };
        wanted
            .iter()
            .copied()
            .find(|w| self.capabilities.iter().any(|c| consumes(c) && c.produces_mime_types.iter().any(|p| p == w)))
    }

    pub fn supports(&self, sbom: bool) -> bool {
        self.capabilities.iter().any(|c| {
            c.produces_mime_types.iter().any(|p| {
                if sbom {
                    p == MIME_SBOM
                } else {
                    p == crate::scan::MIME_REPORT_1_1 || p == crate::scan::MIME_REPORT_NATIVE
                }
            })
        })
    }
}

/// What polling a report gave.
#[derive(Debug)]
pub enum ReportPoll {
    Ready(String),
    /// Not ready: ask again after this long.
    Later(Duration),
}

/// The header that authenticates Berth to an adapter, by Harbor's rules: Basic sends the
/// credential (`user:password`) base64-encoded, Bearer as is, the API key in its own header.
fn auth_header(auth: &str, credential: &str) -> Result<Option<(&'static str, String)>, ScannerError> {
    use base64::Engine as _;
    Ok(match auth {
        "" => None,
        _ if credential.is_empty() => {
            return Err(ScannerError::Invalid("access_credential", format!("is required with auth {auth}")));
        }
        "Basic" => {
            Some(("authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credential))))
        }
        "Bearer" => Some(("authorization", format!("Bearer {credential}"))),
        "X-ScannerAdapter-API-Key" => Some(("x-scanneradapter-api-key", credential.to_owned())),
        other => return Err(ScannerError::Invalid("auth", format!("{other:?} is not supported"))),
    })
}

/// A client of one scanner adapter. A rustls crypto provider must be installed first.
pub struct AdapterClient {
    base: String,
    http: reqwest::Client,
    auth: Option<(&'static str, String)>,
}

impl AdapterClient {
    /// `credential` in plain text; Harbor's rules: Basic sends it base64-encoded (it is
    /// `user:password`), Bearer as is, the API key in its own header.
    pub fn new(
        url: &str,
        auth: &str,
        credential: &str,
        skip_verify: bool,
        timeout: Duration,
    ) -> Result<AdapterClient, ScannerError> {
        let auth = auth_header(auth, credential)?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(skip_verify)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ScannerError::Adapter(format!("HTTP client: {e}")))?;
        Ok(AdapterClient { base: url.trim().trim_end_matches('/').to_owned(), http, auth })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}/api/v1{path}", self.base));
        if let Some((h, v)) = &self.auth {
            r = r.header(*h, v);
        }
        r
    }

    /// The adapter's error message (`{"error":{"message":…}}`) or the body's start.
    async fn failure(what: &str, res: reqwest::Response) -> ScannerError {
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(300).collect());
        ScannerError::Adapter(format!("{what} answered {status}: {msg}"))
    }

    fn unreachable(&self, what: &str, e: reqwest::Error) -> ScannerError {
        ScannerError::Adapter(format!("{what} at {}: {e}", self.base))
    }

    pub async fn metadata(&self) -> Result<AdapterMetadata, ScannerError> {
        let res = self
            .request(reqwest::Method::GET, "/metadata")
            .header("accept", MIME_METADATA)
            .send()
            .await
            .map_err(|e| self.unreachable("GET /api/v1/metadata", e))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(Self::failure("GET /api/v1/metadata", res).await);
        }
        let body = res.bytes().await.map_err(|e| self.unreachable("GET /api/v1/metadata", e))?;
        serde_json::from_slice(&body)
            .map_err(|e| ScannerError::Adapter(format!("GET /api/v1/metadata: not scanner adapter metadata: {e}")))
    }

    /// Submits a scan request; the adapter's scan id.
    pub async fn scan(&self, request: &Value) -> Result<String, ScannerError> {
        let res = self
            .request(reqwest::Method::POST, "/scan")
            .header("content-type", MIME_SCAN_REQUEST)
            .header("accept", MIME_SCAN_RESPONSE)
            .body(request.to_string())
            .send()
            .await
            .map_err(|e| self.unreachable("POST /api/v1/scan", e))?;
        if res.status() != reqwest::StatusCode::ACCEPTED {
            return Err(Self::failure("POST /api/v1/scan", res).await);
        }
        let body = res.bytes().await.map_err(|e| self.unreachable("POST /api/v1/scan", e))?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ScannerError::Adapter(format!("POST /api/v1/scan: not a scan response: {e}")))?;
        v["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ScannerError::Adapter(format!("POST /api/v1/scan answered without an id: {v}")))
    }

    /// One poll of a report: 200 is the report, 302 means later (`Refresh-After`, or
    /// `Retry-After`, in seconds; 1 s when absent).
    pub async fn report(&self, id: &str, mime: &str) -> Result<ReportPoll, ScannerError> {
        let what = format!("GET /api/v1/scan/{id}/report");
        let res = self
            .request(reqwest::Method::GET, &format!("/scan/{}/report", berth_remote::encode(id)))
            .header("accept", mime)
            .send()
            .await
            .map_err(|e| self.unreachable(&what, e))?;
        match res.status().as_u16() {
            200 => Ok(ReportPoll::Ready(res.text().await.map_err(|e| self.unreachable(&what, e))?)),
            302 => {
                let after = ["refresh-after", "retry-after"]
                    .iter()
                    .find_map(|h| {
                        res.headers().get(*h).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
                    })
                    .unwrap_or(1u64);
                Ok(ReportPoll::Later(Duration::from_secs(after.clamp(1, 60))))
            }
            _ => Err(Self::failure(&what, res).await),
        }
    }
}

/// Registrations, project choices, and the key credentials are encrypted with.
pub struct Scanners {
    store: Arc<dyn PolicyStore>,
    key: Arc<SecretKey>,
    /// Bounds each request to an adapter.
    pub timeout: Duration,
}

fn parse(p: &StoredPolicy) -> Option<Registration> {
    match serde_json::from_str(&p.body) {
        Ok(doc) => Some(Registration { id: p.id, doc, created_at: p.created_at, updated_at: p.updated_at }),
        Err(e) => {
            tracing::error!(registration = p.id, error = %e, "a stored scanner registration does not parse; skipped");
            None
        }
    }
}

fn builtin(is_default: bool) -> Registration {
    Registration {
        id: 0,
        doc: RegistrationDoc {
            uuid: BUILTIN_UUID.into(),
            name: BUILTIN_NAME.into(),
            description:
                "Berth's built-in scanner: vulnerability data imported with `berth vulndb import`, no network access"
                    .into(),
            url: "internal://berth".into(),
            auth: String::new(),
            access_credential: String::new(),
            skip_cert_verify: false,
            use_internal_addr: true,
            disabled: false,
            is_default,
        },
        created_at: 0,
        updated_at: 0,
    }
}

fn encode(doc: &RegistrationDoc) -> Result<String, ScannerError> {
    serde_json::to_string(doc).map_err(|e| ScannerError::Store(StoreError::Backend(e.to_string())))
}

impl Scanners {
    pub fn new(store: Arc<dyn PolicyStore>, key: Arc<SecretKey>, timeout: Duration) -> Scanners {
        Scanners { store, key, timeout }
    }

    async fn stored(&self) -> Result<Vec<Registration>, ScannerError> {
        Ok(self.store.policies(REGISTRATION_KIND, 0).await?.iter().filter_map(parse).collect())
    }

    /// Every registration, the built-in scanner first.
    pub async fn list(&self) -> Result<Vec<Registration>, ScannerError> {
        let stored = self.stored().await?;
        let mut out = vec![builtin(!stored.iter().any(|r| r.doc.is_default))];
        out.extend(stored);
        Ok(out)
    }

    pub async fn get(&self, uuid: &str) -> Result<Option<Registration>, ScannerError> {
        Ok(self.list().await?.into_iter().find(|r| r.doc.uuid == uuid))
    }

    async fn must(&self, uuid: &str) -> Result<Registration, ScannerError> {
        self.get(uuid).await?.ok_or_else(|| ScannerError::NotFound(uuid.to_owned()))
    }

    /// The registration scans use when a project chose none.
    pub async fn default_registration(&self) -> Result<Registration, ScannerError> {
        let all = self.list().await?;
        Ok(all.iter().find(|r| r.doc.is_default).cloned().unwrap_or_else(|| builtin(true)))
    }

    fn doc(
        &self,
        uuid: String,
        input: &RegistrationInput,
        old: Option<&RegistrationDoc>,
    ) -> Result<RegistrationDoc, ScannerError> {
        validate(input)?;
        let access_credential = if input.auth.is_empty() {
            String::new()
        } else {
            match (input.access_credential.as_deref(), old) {
                (Some(c), _) if !c.is_empty() => {
                    self.key.encrypt(c).map_err(|e| ScannerError::Invalid("access_credential", e.to_string()))?
                }
                (_, Some(o)) if !o.access_credential.is_empty() => o.access_credential.clone(),
                _ => {
                    return Err(ScannerError::Invalid(
                        "access_credential",
                        format!("is required with auth {:?}", input.auth),
                    ));
                }
            }
        };
        Ok(RegistrationDoc {
            uuid,
            name: input.name.trim().to_owned(),
            description: input.description.clone(),
            url: input.url.trim().trim_end_matches('/').to_owned(),
            auth: input.auth.clone(),
            access_credential,
            skip_cert_verify: input.skip_cert_verify,
            use_internal_addr: input.use_internal_addr,
            disabled: input.disabled,
            is_default: old.is_some_and(|o| o.is_default),
        })
    }

    /// Names and URLs are unique, as in Harbor (registrations are few and made by hand).
    async fn check_unique(&self, doc: &RegistrationDoc) -> Result<(), ScannerError> {
        for r in self.stored().await? {
            if r.doc.uuid == doc.uuid {
                continue;
            }
            if r.doc.name == doc.name {
                return Err(ScannerError::Conflict(format!(
                    "name: a scanner registration named {:?} already exists",
                    doc.name
                )));
            }
            if r.doc.url == doc.url {
                return Err(ScannerError::Conflict(format!(
                    "url: {} is already registered as {:?}",
                    doc.url, r.doc.name
                )));
            }
        }
        Ok(())
    }

    /// Registers a scanner; its uuid.
    pub async fn create(&self, input: &RegistrationInput) -> Result<String, ScannerError> {
        let doc = self.doc(uuid::Uuid::new_v4().to_string(), input, None)?;
        self.check_unique(&doc).await?;
        self.store.create_policy(REGISTRATION_KIND, 0, &encode(&doc)?).await?;
        Ok(doc.uuid)
    }

    fn stored_only(r: Registration, what: &str) -> Result<Registration, ScannerError> {
        if r.is_builtin() {
            return Err(ScannerError::Refused(format!("the built-in scanner cannot be {what}")));
        }
        Ok(r)
    }

    pub async fn update(&self, uuid: &str, input: &RegistrationInput) -> Result<(), ScannerError> {
        let old = Self::stored_only(self.must(uuid).await?, "changed")?;
        let doc = self.doc(uuid.to_owned(), input, Some(&old.doc))?;
        if doc.disabled && doc.is_default {
            return Err(ScannerError::Invalid("disabled", "the default scanner cannot be disabled".into()));
        }
        self.check_unique(&doc).await?;
        self.put(old.id, &doc).await
    }

    async fn put(&self, id: i64, doc: &RegistrationDoc) -> Result<(), ScannerError> {
        if self.store.update_policy(REGISTRATION_KIND, id, &encode(doc)?).await? {
            Ok(())
        } else {
            Err(ScannerError::NotFound(doc.uuid.clone()))
        }
    }

    /// Deletes a registration (not the default, not the built-in one); projects that
    /// chose it fall back to the default.
    pub async fn delete(&self, uuid: &str) -> Result<Registration, ScannerError> {
        let r = Self::stored_only(self.must(uuid).await?, "deleted")?;
        if r.doc.is_default {
            return Err(ScannerError::Refused(format!(
                "scanner {:?} is the default; make another one the default first",
                r.doc.name
            )));
        }
        if !self.store.delete_policy(REGISTRATION_KIND, r.id).await? {
            return Err(ScannerError::NotFound(uuid.to_owned()));
        }
        Ok(r)
    }

    /// Makes `uuid` the system default (the built-in scanner: no stored one is).
    pub async fn set_default(&self, uuid: &str) -> Result<(), ScannerError> {
        let target = self.must(uuid).await?;
        if target.doc.disabled {
            return Err(ScannerError::Invalid("is_default", format!("scanner {:?} is disabled", target.doc.name)));
        }
        for mut r in self.stored().await? {
            let want = r.doc.uuid == uuid;
            if r.doc.is_default != want {
                r.doc.is_default = want;
                self.put(r.id, &r.doc).await?;
            }
        }
        Ok(())
    }

    /// The registration `project_id` scans with: its choice if that still exists and is
    /// enabled, else the default.
    pub async fn of_project(&self, project_id: i64) -> Result<Registration, ScannerError> {
        if let Some(p) = self.store.policies(PROJECT_SCANNER_KIND, project_id).await?.first() {
            let uuid = serde_json::from_str::<Value>(&p.body).ok().and_then(|v| v["uuid"].as_str().map(str::to_owned));
            let chosen = match uuid {
                Some(u) => self.get(&u).await?,
                None => None,
            };
            if let Some(r) = chosen
                && !r.doc.disabled
            {
                return Ok(r);
            }
        }
        self.default_registration().await
    }

    pub async fn set_project(&self, project_id: i64, uuid: &str) -> Result<(), ScannerError> {
        let r = self
            .get(uuid)
            .await?
            .ok_or_else(|| ScannerError::Invalid("uuid", format!("{uuid:?} is not a scanner registration")))?;
        if r.doc.disabled {
            return Err(ScannerError::Invalid("uuid", format!("scanner {:?} is disabled", r.doc.name)));
        }
        let body = serde_json::json!({ "uuid": uuid }).to_string();
        match self.store.policies(PROJECT_SCANNER_KIND, project_id).await?.first() {
            Some(p) => {
                self.store.update_policy(PROJECT_SCANNER_KIND, p.id, &body).await?;
            }
            None => {
                self.store.create_policy(PROJECT_SCANNER_KIND, project_id, &body).await?;
            }
        }
        Ok(())
    }

    /// Forgets a deleted project's choice.
    pub async fn forget_project(&self, project_id: i64) -> Result<(), ScannerError> {
        for p in self.store.policies(PROJECT_SCANNER_KIND, project_id).await? {
            self.store.delete_policy(PROJECT_SCANNER_KIND, p.id).await?;
        }
        Ok(())
    }

    /// Encrypts a credential to keep (a scan request's registry authorization).
    pub fn seal(&self, plain: &str) -> Result<String, ScannerError> {
        if plain.is_empty() {
            return Ok(String::new());
        }
        self.key.encrypt(plain).map_err(|e| ScannerError::Secret("(new)".into(), e.to_string()))
    }

    pub fn open(&self, sealed: &str) -> Result<String, ScannerError> {
        if sealed.is_empty() {
            return Ok(String::new());
        }
        self.key.decrypt(sealed).map_err(|e| ScannerError::Secret("(job)".into(), e.to_string()))
    }

    /// A registration's credential in plain text (empty if it has none).
    fn credential(&self, r: &Registration) -> Result<String, ScannerError> {
        if r.doc.access_credential.is_empty() {
            return Ok(String::new());
        }
        self.key.decrypt(&r.doc.access_credential).map_err(|e| ScannerError::Secret(r.doc.uuid.clone(), e.to_string()))
    }

    /// A client of a stored registration, its credential decrypted only now.
    pub fn client(&self, r: &Registration) -> Result<AdapterClient, ScannerError> {
        AdapterClient::new(&r.doc.url, &r.doc.auth, &self.credential(r)?, r.doc.skip_cert_verify, self.timeout)
    }

    /// A client of a registration given in full (ping before saving), or of a stored one
    /// with the given fields (an empty credential keeps the stored one).
    pub async fn client_for(
        &self,
        input: &RegistrationInput,
        uuid: Option<&str>,
    ) -> Result<AdapterClient, ScannerError> {
        check_endpoint(input)?;
        let mut cred = input.access_credential.clone().unwrap_or_default();
        if cred.is_empty()
            && let Some(u) = uuid
            && let Some(r) = self.get(u).await?
            && !r.doc.access_credential.is_empty()
        {
            cred = self.credential(&r)?;
        }
        AdapterClient::new(input.url.trim(), &input.auth, &cred, input.skip_cert_verify, self.timeout)
    }
}

/// The built-in scanner's `ScannerAdapterMetadata`, with the vulnerability data's age:
/// what `/scanners/{id}/metadata` shows and what Berth's adapter endpoint serves.
pub async fn builtin_metadata(vulns: &dyn berth_core::store::vulns::VulnStore) -> Result<Value, StoreError> {
    use crate::harbor_time as time;
    let st = vulns.vuln_db_status().await?;
    let manifests =
        ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];
    Ok(serde_json::json!({
        "scanner": {"name": BUILTIN_NAME, "vendor": BUILTIN_NAME, "version": env!("CARGO_PKG_VERSION")},
        "capabilities": [
            {"type": "vulnerability", "consumes_mime_types": manifests,
             "produces_mime_types": [crate::scan::MIME_REPORT_1_1, crate::scan::MIME_REPORT_NATIVE]},
            {"type": "sbom", "consumes_mime_types": manifests, "produces_mime_types": [MIME_SBOM],
             "additional_attributes": {"sbom_media_types": [berth_scan::sbom::SPDX_JSON]}},
        ],
        "properties": {
            "harbor.scanner-adapter/scanner-type": "os-package-vulnerability",
            "harbor.scanner-adapter/vulnerability-database-updated-at":
                st.newest_modified_at.map(time).unwrap_or_default(),
            "berth.vulndb/records": st.records.to_string(),
            "berth.vulndb/last-import": st.last_import.map(|i| time(i.at)).unwrap_or_default(),
        },
    }))
}

/// An adapter's vulnerability report as Berth stores it: (severity, summary, report).
/// The summary also names the scanner, which `scan_overview` shows.
pub fn stored_vulnerability_report(body: &str, scanner: &ScannerInfo) -> Result<(String, String, String), String> {
    use berth_scan::report::severity_rank;
    let mut v: Value = serde_json::from_str(body).map_err(|e| format!("the report is not JSON: {e}"))?;
    let Some(o) = v.as_object_mut() else { return Err("the report is not a JSON object".into()) };
    let items = match o.get("vulnerabilities") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err("the report's vulnerabilities is not an array".into()),
    };
    let mut total = 0u64;
    let mut fixable = 0u64;
    let mut by = serde_json::Map::new();
    let mut worst: Option<String> = None;
    for it in &items {
        let sev = it["severity"].as_str().filter(|s| !s.is_empty()).unwrap_or("Unknown").to_owned();
        total += 1;
        if it["fix_version"].as_str().is_some_and(|f| !f.is_empty()) {
            fixable += 1;
        }
        let n = by.entry(sev.clone()).or_insert(Value::from(0u64));
        *n = Value::from(n.as_u64().unwrap_or(0) + 1);
        if worst.as_ref().is_none_or(|w| severity_rank(&sev) > severity_rank(w)) {
            worst = Some(sev);
        }
    }
    let severity = o
        .get("severity")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or(worst)
        .unwrap_or_else(|| "None".into());
    o.insert("vulnerabilities".into(), Value::Array(items));
    if o.get("scanner").is_none_or(|s| !s.is_object()) {
        o.insert("scanner".into(), serde_json::to_value(scanner).unwrap_or_default());
    }
    let shown = o.get("scanner").cloned().unwrap_or_default();
    let summary = serde_json::json!({"total": total, "fixable": fixable, "summary": by, "scanner": shown});
    Ok((severity, summary.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(caps: Value) -> AdapterMetadata {
        serde_json::from_value(serde_json::json!({"scanner": {"name": "T"}, "capabilities": caps})).unwrap()
    }

    #[test]
    fn the_report_type_follows_the_capabilities() {
        const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
        let native_only = md(serde_json::json!([
            {"consumes_mime_types": [OCI], "produces_mime_types": [crate::scan::MIME_REPORT_NATIVE]}
        ]));
        assert_eq!(native_only.report_mime(false, OCI), Some(crate::scan::MIME_REPORT_NATIVE));
        assert_eq!(native_only.report_mime(true, OCI), None);
        assert_eq!(native_only.report_mime(false, "application/vnd.docker.distribution.manifest.v2+json"), None);
        let both = md(serde_json::json!([
            {"type": "vulnerability", "consumes_mime_types": [OCI],
             "produces_mime_types": [crate::scan::MIME_REPORT_NATIVE, crate::scan::MIME_REPORT_1_1]},
            {"type": "sbom", "consumes_mime_types": [OCI], "produces_mime_types": [MIME_SBOM]},
        ]));
        assert_eq!(both.report_mime(false, OCI), Some(crate::scan::MIME_REPORT_1_1), "1.1 preferred");
        assert_eq!(both.report_mime(true, OCI), Some(MIME_SBOM));
        assert!(both.supports(true) && both.supports(false) && !native_only.supports(true));
    }

    #[test]
    fn an_adapter_report_is_summarised_and_names_its_scanner() {
        let scanner = ScannerInfo { name: "Trivy".into(), vendor: "Aqua".into(), version: "0.50".into() };
        let body = r#"{"vulnerabilities": [
            {"id": "A", "severity": "High", "fix_version": "2"},
            {"id": "B", "severity": "Low", "fix_version": ""},
            {"id": "C"}]}"#;
        let (severity, summary, report) = stored_vulnerability_report(body, &scanner).unwrap();
        assert_eq!(severity, "High");
        let summary: Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(
            summary,
            serde_json::json!({"total": 3, "fixable": 1, "summary": {"High": 1, "Low": 1, "Unknown": 1},
                               "scanner": {"name": "Trivy", "vendor": "Aqua", "version": "0.50"}})
        );
        let report: Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report["scanner"]["name"], "Trivy");
        // The report's own severity wins; no vulnerabilities is severity None.
        let (severity, ..) = stored_vulnerability_report(r#"{"severity": "Critical"}"#, &scanner).unwrap();
        assert_eq!(severity, "Critical");
        assert_eq!(stored_vulnerability_report("{}", &scanner).unwrap().0, "None");
        assert!(stored_vulnerability_report("[]", &scanner).unwrap_err().contains("object"));
        assert!(stored_vulnerability_report(r#"{"vulnerabilities": 3}"#, &scanner).unwrap_err().contains("array"));
    }

    #[test]
    fn registrations_are_validated_naming_the_field() {
        let ok = RegistrationInput { name: "trivy".into(), url: "http://trivy:8080".into(), ..Default::default() };
        assert!(validate(&ok).is_ok());
        let field = |i: RegistrationInput| match validate(&i) {
            Err(ScannerError::Invalid(f, _)) => f,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(RegistrationInput { name: " ".into(), ..ok.clone() }), "name");
        assert_eq!(field(RegistrationInput { name: BUILTIN_NAME.into(), ..ok.clone() }), "name");
        assert_eq!(field(RegistrationInput { url: "trivy:8080".into(), ..ok.clone() }), "url");
        assert_eq!(field(RegistrationInput { url: "https://".into(), ..ok.clone() }), "url");
        assert_eq!(field(RegistrationInput { auth: "basic".into(), ..ok.clone() }), "auth");
    }

    #[test]
    fn harbors_three_ways_to_authenticate() {
        let auth = |kind: &str, cred: &str| auth_header(kind, cred).unwrap();
        assert_eq!(auth("", ""), None);
        assert_eq!(auth("Basic", "u:p"), Some(("authorization", "Basic dTpw".to_owned())));
        assert_eq!(auth("Bearer", "tok"), Some(("authorization", "Bearer tok".to_owned())));
        assert_eq!(auth("X-ScannerAdapter-API-Key", "k"), Some(("x-scanneradapter-api-key", "k".to_owned())));
        assert!(matches!(auth_header("Bearer", ""), Err(ScannerError::Invalid("access_credential", _))));
    }
}
