//! Proxy-cache projects (Harbor's projects created with a `registry_id`,
//! `src/controller/proxy` and `src/server/middleware/repoproxy`).
//!
//! A pull of `<project>/<repo>` through a proxy project is answered from the project's
//! own content when it has it, else fetched from the project's registry endpoint
//! (repository `<repo>` there; `library/<repo>` on Docker Hub for a single name) and
//! stored as ordinary manifests, blobs and tags of the project, so quotas, retention and
//! GC treat it like pushed content:
//!
//! - a manifest by digest that is cached is served with no upstream request;
//! - a tag is checked upstream with a HEAD on every pull: the same digest is served from
//!   the cache, a moved tag is fetched again, a tag the upstream does not have is
//!   `MANIFEST_UNKNOWN`; when the upstream is down, errs or rate-limits, the cached copy
//!   is served;
//! - a manifest fetched from the upstream is answered at once and cached in the
//!   background: an image once its config and layers are stored (fetched here if the
//!   client does not pull them), an index once all its children are (as Harbor, an index
//!   whose children are not all pulled is not cached);
//! - a blob is fetched once: in-process callers for the same blob wait for one fetch
//!   (single flight), and the fetcher holds a cluster-wide lock
//!   ([`ClusterStore::lock`], an advisory lock on PostgreSQL) so other instances wait
//!   too and then serve the stored copy. The fetch is stored first, then served
//!   (fetch-then-serve); a blob the project's quota refuses is passed through from the
//!   upstream without being cached.
//!
//! Pushes into a proxy project are refused with Harbor's 403 `DENIED` "can not push
//! artifact to a proxy project: <name>"; deletes are allowed (they evict).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_core::blobstore::{BlobReader, BodyError, ByteStream};
use berth_core::registry::Registry;
use berth_core::store::cluster::ClusterStore;
use berth_core::store::identity::IdentityStore;
use berth_core::store::{StoreError, StoredManifest};
use berth_core::{CoreError, Digest, Reference, RepoName, Tag, manifest};
use berth_remote::{Adapter, RemoteError};
use berth_replication::Registries;
use futures_util::TryStreamExt;

/// The project metadata key holding the registry endpoint a proxy project caches
/// (Harbor keeps it in the project row; Berth in the metadata, hidden from the
/// metadata API and shown as the project's `registry_id`).
pub const REGISTRY_ID: &str = "registry_id";

/// How long whether a project is a proxy is remembered (a project's `registry_id` never
/// changes; this only bounds how long a deleted and recreated project is mistaken).
const PROJECT_CACHE_FOR: Duration = Duration::from_secs(2);
/// How long a registry endpoint's document is trusted before it is read again (a
/// changed URL or credential is in force everywhere within this).
const ENDPOINT_CACHE_FOR: Duration = Duration::from_secs(5);
/// How long an index waits for its children to be cached before it is given up.
const INDEX_WAIT: Duration = Duration::from_secs(600);
/// Blobs of one manifest fetched at once by the background cache.
const BLOB_FETCHES: usize = 2;
/// Upstream blob fetches one instance runs at once. Each holds a cluster lock and, while
/// storing, a digest lock: on PostgreSQL two connections of the lock pool (at least 2,
/// half the pool), so fetches are kept fewer than the pool's connections and one can
/// always finish.
const FETCHES: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The upstream failed and nothing cached can answer instead.
    #[error("upstream registry {registry}: {message}")]
    Upstream { registry: String, status: Option<u16>, message: String },
    /// The project's registry endpoint is gone or cannot be used.
    #[error("proxy cache project {project}: {message}")]
    Endpoint { project: String, message: String },
    /// A push into a proxy project (Harbor's message).
    #[error("can not push artifact to a proxy project: {0}")]
    PushRefused(String),
}

impl From<StoreError> for ProxyError {
    fn from(e: StoreError) -> Self {
        ProxyError::Core(CoreError::Store(e))
    }
}

/// A manifest as answered: from the cache, or as the upstream sent it (then being cached).
#[derive(Debug, Clone)]
pub struct Served {
    pub manifest: StoredManifest,
    pub cached: bool,
}

/// Where a blob GET is answered from.
pub enum BlobSource {
    /// The project has it now: serve it like any other blob.
    Local,
    /// Not cached (the project's quota refused it): the upstream's bytes, passed on.
    Upstream(BlobReader),
}

/// A registry endpoint in use by proxy projects.
struct Upstream {
    name: String,
    adapter: Adapter,
}

struct CachedEndpoint {
    updated_at: i64,
    checked: Instant,
    upstream: Arc<Upstream>,
}

/// Proxy caching for every proxy project of this instance.
pub struct ProxyCache {
    registry: Arc<Registry>,
    registries: Registries,
    identity: Arc<dyn IdentityStore>,
    cluster: Arc<dyn ClusterStore>,
    /// Connect and read timeout of upstream requests.
    timeout: Duration,
    projects: Mutex<HashMap<String, (Instant, Option<i64>)>>,
    endpoints: Mutex<HashMap<i64, CachedEndpoint>>,
    /// Blob fetches under way on this instance, by lock name (single flight).
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fetches: tokio::sync::Semaphore,
}

fn project_name(repo: &RepoName) -> &str {
    repo.as_str().split('/').next().unwrap_or("")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ProxyCache {
    pub fn new(
        registry: Arc<Registry>,
        registries: Registries,
        identity: Arc<dyn IdentityStore>,
        cluster: Arc<dyn ClusterStore>,
        timeout: Duration,
    ) -> ProxyCache {
        ProxyCache {
            registry,
            registries,
            identity,
            cluster,
            timeout,
            projects: Mutex::new(HashMap::new()),
            endpoints: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            fetches: tokio::sync::Semaphore::new(FETCHES),
        }
    }

    /// The registry endpoint `repo`'s project caches, if it is a proxy project.
    pub async fn registry_of(&self, repo: &RepoName) -> Result<Option<i64>, ProxyError> {
        let project = project_name(repo);
        if let Some((at, v)) = lock(&self.projects).get(project)
            && at.elapsed() < PROJECT_CACHE_FOR
        {
            return Ok(*v);
        }
        let v = self
            .identity
            .project_by_name(project)
            .await?
            .and_then(|p| p.metadata.get(REGISTRY_ID).and_then(|v| v.parse::<i64>().ok()));
        let mut projects = lock(&self.projects);
        if projects.len() > 10_000 {
            projects.clear();
        }
        projects.insert(project.to_owned(), (Instant::now(), v));
        Ok(v)
    }

    /// Forgets what is remembered of `project` (created or deleted on this instance).
    pub fn forget(&self, project: &str) {
        lock(&self.projects).remove(project);
    }

    /// Refuses a push (blob upload, manifest PUT) into a proxy project.
    pub async fn check_push(&self, repo: &RepoName) -> Result<(), ProxyError> {
        match self.registry_of(repo).await? {
            Some(_) => Err(ProxyError::PushRefused(project_name(repo).to_owned())),
            None => Ok(()),
        }
    }

    async fn upstream(&self, repo: &RepoName, id: i64) -> Result<Arc<Upstream>, ProxyError> {
        let project = project_name(repo);
        if let Some(c) = lock(&self.endpoints).get(&id)
            && c.checked.elapsed() < ENDPOINT_CACHE_FOR
        {
            return Ok(Arc::clone(&c.upstream));
        }
        let endpoint_error = |message: String| ProxyError::Endpoint { project: project.to_owned(), message };
        let r = self
            .registries
            .get(id)
            .await
            .map_err(|e| endpoint_error(e.to_string()))?
            .ok_or_else(|| endpoint_error(format!("its registry endpoint {id} no longer exists")))?;
        if let Some(c) = lock(&self.endpoints).get_mut(&id)
            && c.updated_at == r.updated_at
        {
            c.checked = Instant::now();
            return Ok(Arc::clone(&c.upstream));
        }
        // A new client only when the endpoint changed: it holds the upstream's tokens.
        let adapter = self.registries.adapter(&r, self.timeout).map_err(|e| endpoint_error(e.to_string()))?;
        let upstream = Arc::new(Upstream { name: r.doc.name.clone(), adapter });
        lock(&self.endpoints).insert(
            id,
            CachedEndpoint { updated_at: r.updated_at, checked: Instant::now(), upstream: Arc::clone(&upstream) },
        );
        Ok(upstream)
    }

    /// The manifest `reference` of `repo` in proxy project whose endpoint is `id`.
    pub async fn manifest(
        self: &Arc<Self>,
        id: i64,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Served, ProxyError> {
        let local = self.registry.meta().get_manifest(repo, reference).await?;
        if let (Reference::Digest(_), Some(m)) = (reference, &local) {
            return Ok(Served { manifest: m.clone(), cached: true });
        }
        let up = self.upstream(repo, id).await?;
        let remote = remote_name(&up, repo)?;
        let client = up.adapter.client();
        if let Some(m) = local {
            match client.manifest_head(&remote, &reference.to_string()).await {
                Ok(Some((d, _))) if d == m.digest.to_string() => return Ok(Served { manifest: m, cached: true }),
                Ok(Some(_)) => {} // moved upstream: fetched below
                Ok(None) => return Err(CoreError::ManifestUnknown(reference.to_string()).into()),
                Err(e) => {
                    tracing::info!(repository = %repo, reference = %reference, upstream = %up.name, error = %e,
                        "proxy cache: the upstream did not answer the tag check; serving the cached copy");
                    return Ok(Served { manifest: m, cached: true });
                }
            }
        }
        let fetched = client.manifest_get(&remote, &reference.to_string()).await.map_err(|e| match e {
            RemoteError::NotFound(_) => CoreError::ManifestUnknown(reference.to_string()).into(),
            e => upstream_error(&up, e),
        })?;
        let digest: Digest =
            fetched.digest.parse().map_err(|e| upstream_error(&up, RemoteError::Protocol(format!("{e}"))))?;
        let manifest = StoredManifest { digest, media_type: fetched.media_type, content: fetched.bytes };
        let tag = match reference {
            Reference::Tag(t) => Some(t.clone()),
            Reference::Digest(_) => None,
        };
        let (this, repo2, m) = (Arc::clone(self), repo.clone(), manifest.clone());
        tokio::spawn(async move {
            if let Err(e) = this.cache_manifest(&up, &repo2, &remote, tag.as_ref(), &m).await {
                tracing::warn!(repository = %repo2, digest = %m.digest, upstream = %up.name, error = %e,
                    "proxy cache: a manifest pulled through was not cached");
            }
        });
        Ok(Served { manifest, cached: false })
    }

    /// Stores a manifest fetched from the upstream, once what it references is stored.
    async fn cache_manifest(
        self: &Arc<Self>,
        up: &Arc<Upstream>,
        repo: &RepoName,
        remote: &str,
        tag: Option<&Tag>,
        m: &StoredManifest,
    ) -> Result<(), ProxyError> {
        let parsed = manifest::parse(&m.content, Some(&m.media_type)).map_err(CoreError::from)?;
        if parsed.manifests.is_empty() {
            for chunk in parsed.blobs.chunks(BLOB_FETCHES) {
                // Boxed: a spawned task cannot hold a closure's borrowing future.
                type Fetch<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), ProxyError>> + Send + 'a>>;
                let fetches: Vec<Fetch<'_>> = chunk
                    .iter()
                    .map(|d| Box::pin(self.ensure_blob(up, repo, remote, &d.digest)) as Fetch<'_>)
                    .collect();
                for r in futures_util::future::join_all(fetches).await {
                    r?;
                }
            }
        } else {
            // Children are cached as clients pull them (by digest, after the index).
            let deadline = Instant::now() + INDEX_WAIT;
            for child in &parsed.manifests {
                let r = Reference::Digest(child.digest.clone());
                while self.registry.meta().get_manifest(repo, &r).await?.is_none() {
                    if Instant::now() > deadline {
                        return Err(CoreError::ManifestBlobUnknown {
                            kind: "manifests",
                            digests: vec![child.digest.clone()],
                        }
                        .into());
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let reference = match tag {
            Some(t) => Reference::Tag(t.clone()),
            None => Reference::Digest(m.digest.clone()),
        };
        self.registry.put_manifest(repo, &reference, Some(&m.media_type), m.content.clone()).await?;
        tracing::info!(repository = %repo, reference = %reference, upstream = %up.name, "proxy cache: manifest cached");
        Ok(())
    }

    /// Makes blob `digest` of `repo` available: cached already, or fetched now.
    pub async fn blob(self: &Arc<Self>, id: i64, repo: &RepoName, digest: &Digest) -> Result<BlobSource, ProxyError> {
        if self.has_blob(repo, digest).await? {
            return Ok(BlobSource::Local);
        }
        let up = self.upstream(repo, id).await?;
        let remote = remote_name(&up, repo)?;
        match self.ensure_blob(&up, repo, &remote, digest).await {
            Err(ProxyError::Core(CoreError::Store(StoreError::QuotaExceeded(q)))) => {
                tracing::info!(repository = %repo, %digest, error = %q,
                    "proxy cache: blob passed through, not cached (quota)");
                let res = self.get_blob(&up, &remote, digest).await?;
                let len = res.content_length().unwrap_or(0);
                let body = res.bytes_stream().map_err(std::io::Error::other);
                Ok(BlobSource::Upstream(BlobReader { len, body: Box::pin(body) }))
            }
            r => r.map(|()| BlobSource::Local),
        }
    }

    async fn has_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool, ProxyError> {
        Ok(self.registry.meta().repo_blob(repo, digest).await?.is_some())
    }

    /// One fetch per blob: callers on this instance queue behind one slot, the instance
    /// holding the slot takes the cluster-wide lock, and whoever comes after finds the
    /// blob stored.
    async fn ensure_blob(
        &self,
        up: &Upstream,
        repo: &RepoName,
        remote: &str,
        digest: &Digest,
    ) -> Result<(), ProxyError> {
        let key = format!("proxy-blob {repo}@{digest}");
        let slot = Arc::clone(lock(&self.inflight).entry(key.clone()).or_default());
        let result = async {
            let _turn = slot.lock().await;
            if self.has_blob(repo, digest).await? {
                return Ok(());
            }
            let _permit = self.fetches.acquire().await.map_err(|e| CoreError::Unsupported(e.to_string()))?;
            let cluster = self.cluster.lock(&key).await?;
            let r = self.fetch_blob(up, repo, remote, digest).await;
            cluster.release().await;
            r
        }
        .await;
        {
            let mut inflight = lock(&self.inflight);
            // The map's and ours: nobody else waits on this slot.
            if Arc::strong_count(&slot) == 2 {
                inflight.remove(&key);
            }
        }
        result
    }

    async fn fetch_blob(
        &self,
        up: &Upstream,
        repo: &RepoName,
        remote: &str,
        digest: &Digest,
    ) -> Result<(), ProxyError> {
        // Another instance may have stored it while this one waited for the lock.
        if self.has_blob(repo, digest).await? {
            return Ok(());
        }
        let res = self.get_blob(up, remote, digest).await?;
        let body: ByteStream = Box::pin(res.bytes_stream().map_err(|e| BodyError(format!("upstream: {e}"))));
        self.registry.monolithic_upload(repo, digest, body).await?;
        tracing::debug!(repository = %repo, %digest, upstream = %up.name, "proxy cache: blob cached");
        Ok(())
    }

    async fn get_blob(&self, up: &Upstream, remote: &str, digest: &Digest) -> Result<reqwest::Response, ProxyError> {
        up.adapter.client().blob_get(remote, &digest.to_string(), 0).await.map_err(|e| match e {
            RemoteError::NotFound(_) => CoreError::BlobUnknown(digest.clone()).into(),
            e => upstream_error(up, e),
        })
    }
}

/// The repository's name upstream: without the project, under `library/` for a single
/// name on Docker Hub.
fn remote_name(up: &Upstream, repo: &RepoName) -> Result<String, ProxyError> {
    match repo.as_str().split_once('/') {
        Some((_, rest)) => Ok(up.adapter.kind.repository_name(rest)),
        None => Err(CoreError::NameUnknown(repo.to_string()).into()),
    }
}

fn upstream_error(up: &Upstream, e: RemoteError) -> ProxyError {
    let status = match &e {
        RemoteError::Status { status, .. } => Some(*status),
        RemoteError::Unauthorized(_) => Some(401),
        RemoteError::Denied(_) => Some(403),
        _ => None,
    };
    ProxyError::Upstream { registry: up.name.clone(), status, message: e.to_string() }
}
