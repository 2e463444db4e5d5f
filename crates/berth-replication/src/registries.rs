//! Registry endpoints (Harbor's `registry` table): name, URL, adapter type, credential,
//! TLS checking. Kept as documents in the [`PolicyStore`] (kind [`REGISTRY_KIND`],
//! project 0), so both database backends hold them with no SQL of their own. The access
//! secret is stored only encrypted with the cluster secret key and is never shown again.

use std::sync::Arc;
use std::time::Duration;

use berth_core::store::StoreError;
use berth_core::store::policies::{PolicyStore, StoredPolicy};
use berth_remote::{Adapter, AdapterKind, Credential, Endpoint};
use berth_secret::SecretKey;
use serde::{Deserialize, Serialize};

/// The [`PolicyStore`] kind of registry documents.
pub const REGISTRY_KIND: &str = "replication-registry";

/// A registry's stored document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryDoc {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub url: String,
    /// Harbor's adapter type (`harbor`, `docker-registry`, `docker-hub`, `oci`).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub insecure: bool,
    /// `basic` or empty (anonymous).
    #[serde(default)]
    pub credential_type: String,
    #[serde(default)]
    pub access_key: String,
    /// The secret, encrypted (`<berth-gcm>…`, or Harbor's `<enc-v1>…` when imported).
    #[serde(default)]
    pub access_secret: String,
    /// `healthy`, `unhealthy` or `unknown`, as last checked.
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub id: i64,
    pub doc: RegistryDoc,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A registry as given by a client, secret in plain text.
#[derive(Debug, Clone, Default)]
pub struct RegistryInput {
    pub name: String,
    pub description: String,
    pub url: String,
    pub kind: String,
    pub insecure: bool,
    pub credential_type: String,
    pub access_key: String,
    /// `None`: keep the stored secret (an update that does not repeat it).
    pub access_secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A field is invalid: (field, message).
    #[error("{0}: {1}")]
    Invalid(&'static str, String),
    #[error("a registry named {0:?} already exists")]
    Conflict(String),
    #[error("registry {0} not found")]
    NotFound(i64),
    #[error("the stored credential of registry {0} cannot be read: {1}")]
    Secret(i64, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registry endpoints and the key their secrets are encrypted with.
#[derive(Clone)]
pub struct Registries {
    store: Arc<dyn PolicyStore>,
    key: Arc<SecretKey>,
}

fn parse(p: &StoredPolicy) -> Option<Registry> {
    match serde_json::from_str(&p.body) {
        Ok(doc) => Some(Registry { id: p.id, doc, created_at: p.created_at, updated_at: p.updated_at }),
        Err(e) => {
            tracing::error!(registry = p.id, error = %e, "a stored registry does not parse; skipped");
            None
        }
    }
}

/// Checks a registry as given (400s name the field).
pub fn validate(input: &RegistryInput) -> Result<(), RegistryError> {
    if input.name.trim().is_empty() {
        return Err(RegistryError::Invalid("name", "is required".into()));
    }
    if input.name.len() > 255 {
        return Err(RegistryError::Invalid("name", "must be at most 255 characters".into()));
    }
    if AdapterKind::parse(&input.kind).is_none() {
        let kinds: Vec<_> = AdapterKind::ALL.iter().map(|k| k.name()).collect();
        return Err(RegistryError::Invalid("type", format!("{:?} is not one of {}", input.kind, kinds.join(", "))));
    }
    let url = input.url.trim();
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    if rest.is_none_or(|r| r.trim_matches('/').is_empty() || r.contains(char::is_whitespace)) {
        return Err(RegistryError::Invalid("url", format!("{url:?} is not an http:// or https:// URL")));
    }
    match input.credential_type.as_str() {
        "" | "basic" => {}
        t => return Err(RegistryError::Invalid("credential.type", format!("{t:?} is not supported; use \"basic\""))),
    }
    Ok(())
}

impl Registries {
    pub fn new(store: Arc<dyn PolicyStore>, key: Arc<SecretKey>) -> Registries {
        Registries { store, key }
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// Every registry, by id.
    pub async fn list(&self) -> Result<Vec<Registry>, RegistryError> {
        Ok(self.store.policies(REGISTRY_KIND, 0).await?.iter().filter_map(parse).collect())
    }

    pub async fn get(&self, id: i64) -> Result<Option<Registry>, RegistryError> {
        Ok(self.store.policy(REGISTRY_KIND, id).await?.as_ref().and_then(parse))
    }

    fn doc(&self, input: &RegistryInput, old: Option<&RegistryDoc>) -> Result<RegistryDoc, RegistryError> {
        validate(input)?;
        let access_secret = match (&input.access_secret, old) {
            (Some(s), _) if s.is_empty() => String::new(),
            (Some(s), _) => {
                self.key.encrypt(s).map_err(|e| RegistryError::Invalid("credential.access_secret", e.to_string()))?
            }
            (None, Some(o)) => o.access_secret.clone(),
            (None, None) => String::new(),
        };
        Ok(RegistryDoc {
            name: input.name.trim().to_owned(),
            description: input.description.clone(),
            url: input.url.trim().trim_end_matches('/').to_owned(),
            kind: input.kind.clone(),
            insecure: input.insecure,
            credential_type: if input.access_key.is_empty() { String::new() } else { "basic".into() },
            access_key: input.access_key.clone(),
            access_secret,
            status: old.map_or_else(|| "unknown".into(), |o| o.status.clone()),
        })
    }

    /// Names are unique (checked here: registries are few and created by hand).
    async fn check_unique(&self, name: &str, except: i64) -> Result<(), RegistryError> {
        if self.list().await?.iter().any(|r| r.id != except && r.doc.name == name) {
            return Err(RegistryError::Conflict(name.to_owned()));
        }
        Ok(())
    }

    pub async fn create(&self, input: &RegistryInput) -> Result<i64, RegistryError> {
        let doc = self.doc(input, None)?;
        self.check_unique(&doc.name, 0).await?;
        let body = serde_json::to_string(&doc).map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(self.store.create_policy(REGISTRY_KIND, 0, &body).await?)
    }

    pub async fn update(&self, id: i64, input: &RegistryInput) -> Result<(), RegistryError> {
        let old = self.get(id).await?.ok_or(RegistryError::NotFound(id))?;
        let doc = self.doc(input, Some(&old.doc))?;
        self.check_unique(&doc.name, id).await?;
        self.put(id, &doc).await
    }

    async fn put(&self, id: i64, doc: &RegistryDoc) -> Result<(), RegistryError> {
        let body = serde_json::to_string(doc).map_err(|e| StoreError::Backend(e.to_string()))?;
        if self.store.update_policy(REGISTRY_KIND, id, &body).await? {
            Ok(())
        } else {
            Err(RegistryError::NotFound(id))
        }
    }

    /// Records the outcome of a health check.
    pub async fn set_status(&self, id: i64, healthy: bool) -> Result<(), RegistryError> {
        let Some(mut r) = self.get(id).await? else { return Ok(()) };
        let status = if healthy { "healthy" } else { "unhealthy" };
        if r.doc.status != status {
            r.doc.status = status.into();
            self.put(id, &r.doc).await?;
        }
        Ok(())
    }

    pub async fn delete(&self, id: i64) -> Result<(), RegistryError> {
        if self.store.delete_policy(REGISTRY_KIND, id).await? { Ok(()) } else { Err(RegistryError::NotFound(id)) }
    }

    /// The endpoint with its secret decrypted.
    pub fn endpoint(&self, r: &Registry) -> Result<Endpoint, RegistryError> {
        let credential = if r.doc.access_key.is_empty() {
            Credential::Anonymous
        } else {
            let password = if r.doc.access_secret.is_empty() {
                String::new()
            } else {
                self.key.decrypt(&r.doc.access_secret).map_err(|e| RegistryError::Secret(r.id, e.to_string()))?
            };
            Credential::Basic { username: r.doc.access_key.clone(), password }
        };
        Ok(Endpoint { url: r.doc.url.clone(), credential, insecure: r.doc.insecure })
    }

    pub fn adapter(&self, r: &Registry, timeout: Duration) -> Result<Adapter, RegistryError> {
        let kind = AdapterKind::parse(&r.doc.kind).ok_or_else(|| RegistryError::Invalid("type", r.doc.kind.clone()))?;
        let ep = self.endpoint(r)?;
        Adapter::new(kind, &ep, timeout).map_err(|e| RegistryError::Invalid("url", e.to_string()))
    }
}

/// An adapter for a registry given in full (`/registries/ping` of one not saved yet).
pub fn adapter_for(input: &RegistryInput, timeout: Duration) -> Result<Adapter, RegistryError> {
    validate(input)?;
    let kind = AdapterKind::parse(&input.kind).ok_or_else(|| RegistryError::Invalid("type", input.kind.clone()))?;
    let credential = if input.access_key.is_empty() {
        Credential::Anonymous
    } else {
        Credential::Basic {
            username: input.access_key.clone(),
            password: input.access_secret.clone().unwrap_or_default(),
        }
    };
    let ep = Endpoint { url: input.url.trim().to_owned(), credential, insecure: input.insecure };
    Adapter::new(kind, &ep, timeout).map_err(|e| RegistryError::Invalid("url", e.to_string()))
}
