//! What differs per kind of registry (Harbor's replication adapters, `src/pkg/reg/adapter`):
//! where its `/v2` is, how its repositories and artifacts are listed, whether
//! namespaces must be created before a push, and what Harbor's UI is told about it.
//!
//! - `harbor`: a Harbor (or another Berth). Repositories, artifacts, tags and labels come
//!   from `/api/v2.0`; a missing project is created (private) before a push.
//! - `docker-registry`: CNCF Distribution. `/v2/_catalog` and tags; no namespaces.
//! - `docker-hub`: `hub.docker.com`'s registry at `registry-1.docker.io`, its token realm,
//!   single names under `library/`; there is no catalog, so repositories are listed per
//!   namespace through Hub's API.
//! - `oci`: any other Distribution-API registry: catalog if it has one, tags.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Client, Endpoint, RemoteError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdapterKind {
    Harbor,
    DockerRegistry,
    DockerHub,
    Oci,
}

/// Harbor's `FilterStyle`.
#[derive(Debug, Clone, Serialize)]
pub struct FilterStyle {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub style: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<&'static str>,
}

/// Harbor's `RegistryInfo` (`/registries/{id}/info`).
#[derive(Debug, Clone, Serialize)]
pub struct AdapterInfo {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub description: &'static str,
    pub supported_resource_filters: Vec<FilterStyle>,
    pub supported_triggers: Vec<&'static str>,
    pub supported_copy_by_chunk: bool,
}

impl AdapterKind {
    pub const ALL: [AdapterKind; 4] =
        [AdapterKind::DockerHub, AdapterKind::DockerRegistry, AdapterKind::Harbor, AdapterKind::Oci];

    pub fn parse(s: &str) -> Option<AdapterKind> {
        AdapterKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Harbor's `registry.type` value.
    pub fn name(self) -> &'static str {
        match self {
            AdapterKind::Harbor => "harbor",
            AdapterKind::DockerRegistry => "docker-registry",
            AdapterKind::DockerHub => "docker-hub",
            AdapterKind::Oci => "oci",
        }
    }

    pub fn info(self) -> AdapterInfo {
        let mut filters = vec![
            FilterStyle { kind: "name", style: "input", values: vec![] },
            FilterStyle { kind: "tag", style: "input", values: vec![] },
        ];
        if self == AdapterKind::Harbor {
            filters.push(FilterStyle { kind: "label", style: "input", values: vec![] });
            filters.push(FilterStyle { kind: "resource", style: "radio", values: vec!["image", "artifact"] });
        }
        AdapterInfo {
            kind: self.name(),
            description: match self {
                AdapterKind::Harbor => "Harbor (or Berth): repositories, tags and labels from /api/v2.0",
                AdapterKind::DockerRegistry => "CNCF Distribution (docker registry): /v2/_catalog and tags",
                AdapterKind::DockerHub => "Docker Hub: registry-1.docker.io, repositories per namespace",
                AdapterKind::Oci => "Any registry speaking the OCI Distribution API",
            },
            supported_resource_filters: filters,
            supported_triggers: vec!["manual", "scheduled"],
            supported_copy_by_chunk: self != AdapterKind::DockerHub,
        }
    }

    /// Harbor's `RegistryProviderInfo` (`/replication/adapterinfos`): how the UI asks for
    /// the endpoint.
    pub fn provider_info(self) -> serde_json::Value {
        match self {
            AdapterKind::DockerHub => json!({
                "endpoint_pattern": {"endpoint_type": "EndpointPatternTypeFix",
                    "endpoints": [{"key": "hub.docker.com", "value": "https://hub.docker.com"}]},
                "credential_pattern": null,
            }),
            _ => {
                json!({"endpoint_pattern": {"endpoint_type": "EndpointPatternTypeStandard"}, "credential_pattern": null})
            }
        }
    }

    /// Where the Distribution API of a registry with this URL is.
    pub fn v2_url(self, url: &str) -> String {
        let url = url.trim().trim_end_matches('/');
        match self {
            AdapterKind::DockerHub if url.contains("://hub.docker.com") || url.contains("://docker.io") => {
                "https://registry-1.docker.io".to_owned()
            }
            _ => url.to_owned(),
        }
    }

    /// The name a repository has on this registry (Docker Hub keeps single names under
    /// `library/`).
    pub fn repository_name(self, name: &str) -> String {
        if self == AdapterKind::DockerHub && !name.contains('/') { format!("library/{name}") } else { name.to_owned() }
    }
}

/// An artifact of a remote repository: a digest when the listing says it (Harbor), its
/// tags and labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteArtifact {
    pub digest: Option<String>,
    pub tags: Vec<String>,
    pub labels: Vec<String>,
    /// Harbor's artifact type (`IMAGE`, …) when known.
    pub kind: Option<String>,
}

/// A remote registry of some kind.
pub struct Adapter {
    pub kind: AdapterKind,
    /// The endpoint URL as configured (the management API's base for Harbor and Hub).
    pub url: String,
    client: Client,
}

impl Adapter {
    pub fn new(kind: AdapterKind, endpoint: &Endpoint, timeout: std::time::Duration) -> Result<Adapter> {
        let v2 = Endpoint { url: kind.v2_url(&endpoint.url), ..endpoint.clone() };
        Ok(Adapter {
            kind,
            url: endpoint.url.trim().trim_end_matches('/').to_owned(),
            client: Client::new(&v2, timeout)?,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where Docker Hub's repository API is: hub.docker.com for Docker Hub itself (also
    /// when given as its registry's address), else the configured URL (a Hub-compatible
    /// service or a test's stand-in).
    fn hub_api(&self) -> &str {
        if self.url.contains("docker.io") || self.url.contains("://hub.docker.com") {
            "https://hub.docker.com"
        } else {
            &self.url
        }
    }

    /// Whether the registry answers and takes the credentials.
    pub async fn health(&self) -> Result<()> {
        self.client.ping().await?;
        if self.kind == AdapterKind::Harbor {
            // The API (not just /v2) must accept them too: listing and creating projects
            // go through it.
            let url = format!("{}/api/v2.0/users/current", self.url);
            if matches!(self.client.credential(), crate::Credential::Basic { .. }) {
                let res = self.client.api_send(reqwest::Method::GET, &url, None).await?;
                if !res.status().is_success() {
                    return Err(crate::error_of(res, &format!("GET {url}")).await);
                }
            }
        }
        Ok(())
    }

    /// Repositories, optionally only those under `namespaces` (what a name filter
    /// allows; needed where there is no catalog).
    pub async fn repositories(&self, namespaces: &[String]) -> Result<Vec<String>> {
        match self.kind {
            AdapterKind::Harbor => {
                #[derive(Deserialize)]
                struct Repo {
                    name: String,
                }
                let mut url = Some(format!("{}/api/v2.0/repositories?page=1&page_size=100", self.url));
                let mut out = Vec::new();
                while let Some(u) = url.take() {
                    let (page, next): (Vec<Repo>, _) = self.client.api_get(&u).await?;
                    if page.is_empty() {
                        break;
                    }
                    out.extend(page.into_iter().map(|r| r.name));
                    url = next;
                }
                Ok(out)
            }
            AdapterKind::DockerHub => {
                #[derive(Deserialize)]
                struct Page {
                    next: Option<String>,
                    #[serde(default)]
                    results: Vec<HubRepo>,
                }
                #[derive(Deserialize)]
                struct HubRepo {
                    name: String,
                    namespace: Option<String>,
                }
                let mut out = Vec::new();
                for ns in namespaces {
                    let mut url = Some(format!("{}/v2/repositories/{ns}/?page_size=100", self.hub_api()));
                    while let Some(u) = url.take() {
                        let (page, _): (Page, _) = self.client.api_get(&u).await?;
                        out.extend(
                            page.results
                                .into_iter()
                                .map(|r| format!("{}/{}", r.namespace.as_deref().unwrap_or(ns), r.name)),
                        );
                        url = page.next;
                    }
                }
                Ok(out)
            }
            AdapterKind::DockerRegistry | AdapterKind::Oci => {
                let all = self.client.catalog().await?;
                Ok(all)
            }
        }
    }

    /// The artifacts of a repository: Harbor's with digests, tags and labels; elsewhere
    /// one per tag.
    pub async fn artifacts(&self, repo: &str) -> Result<Vec<RemoteArtifact>> {
        if self.kind == AdapterKind::Harbor {
            #[derive(Deserialize)]
            struct Named {
                name: String,
            }
            #[derive(Deserialize)]
            struct Art {
                digest: String,
                #[serde(default, rename = "type")]
                kind: Option<String>,
                #[serde(default)]
                tags: Option<Vec<Named>>,
                #[serde(default)]
                labels: Option<Vec<Named>>,
            }
            let (project, rest) = repo.split_once('/').ok_or_else(|| {
                RemoteError::Protocol(format!("{repo:?} is not a Harbor repository name (project/name)"))
            })?;
            // Harbor wants the repository name inside the project encoded twice.
            let enc = rest.replace('/', "%252F");
            let mut url = Some(format!(
                "{}/api/v2.0/projects/{project}/repositories/{enc}/artifacts?with_tag=true&with_label=true&page=1&page_size=100",
                self.url
            ));
            let mut out = Vec::new();
            while let Some(u) = url.take() {
                let (page, next): (Vec<Art>, _) = self.client.api_get(&u).await?;
                if page.is_empty() {
                    break;
                }
                out.extend(page.into_iter().map(|a| RemoteArtifact {
                    digest: Some(a.digest),
                    kind: a.kind,
                    tags: a.tags.unwrap_or_default().into_iter().map(|t| t.name).collect(),
                    labels: a.labels.unwrap_or_default().into_iter().map(|l| l.name).collect(),
                }));
                url = next;
            }
            return Ok(out);
        }
        Ok(self
            .client
            .tags(repo)
            .await?
            .into_iter()
            .map(|t| RemoteArtifact { tags: vec![t], ..Default::default() })
            .collect())
    }

    /// Makes sure `namespace` exists before a push (Harbor: a private project; 409 means
    /// it already does). Elsewhere there is nothing to create.
    pub async fn ensure_namespace(&self, namespace: &str) -> Result<()> {
        if self.kind != AdapterKind::Harbor {
            return Ok(());
        }
        let head = format!("{}/api/v2.0/projects?project_name={namespace}", self.url);
        let res = self.client.api_send(reqwest::Method::HEAD, &head, None).await?;
        if res.status().is_success() {
            return Ok(());
        }
        let url = format!("{}/api/v2.0/projects", self.url);
        let body = json!({"project_name": namespace, "metadata": {"public": "false"}});
        let res = self.client.api_send(reqwest::Method::POST, &url, Some(body)).await?;
        match res.status().as_u16() {
            201 | 409 => Ok(()),
            _ => Err(crate::error_of(res, &format!("creating project {namespace} (POST {url})")).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_names() {
        for k in AdapterKind::ALL {
            assert_eq!(AdapterKind::parse(k.name()), Some(k));
            assert_eq!(k.info().kind, k.name());
        }
        assert_eq!(AdapterKind::parse("quay"), None);
        assert_eq!(AdapterKind::DockerHub.v2_url("https://hub.docker.com/"), "https://registry-1.docker.io");
        assert_eq!(AdapterKind::Harbor.v2_url("https://h.example.com/"), "https://h.example.com");
        assert_eq!(AdapterKind::DockerHub.repository_name("alpine"), "library/alpine");
        assert_eq!(AdapterKind::DockerHub.repository_name("bitnami/redis"), "bitnami/redis");
        assert_eq!(AdapterKind::Harbor.repository_name("alpine"), "alpine");
    }
}
