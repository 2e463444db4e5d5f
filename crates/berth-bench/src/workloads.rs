//! The measurements. Every loop is bounded by a count and/or a deadline.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail, ensure};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::auth::{Creds, authorize, repo_scope};
use crate::blob::{Blob, BlobSource, random_bytes};
use crate::http::{Conn, ReqBody, drain, origin_form, read_all, with_query};
use crate::server::Server;

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCTETS: &str = "application/octet-stream";
const CHUNK: u64 = 8 * 1024 * 1024;

pub struct Opts {
    pub rounds: usize,
    pub duration: Duration,
    pub conns: usize,
    pub tags: usize,
    pub push_iters: usize,
    pub pull_iters: usize,
    pub list_iters: usize,
    /// Repositories in project `bench` for the web UI's repository list.
    pub repos: usize,
    pub tmp: PathBuf,
}

/// Everything generated before any timing starts.
pub struct Fixtures {
    pub src16: BlobSource,
    pub src64: BlobSource,
    pub layer: Blob,
    pub config: Blob,
}

impl Fixtures {
    pub fn new() -> Self {
        let layer = Blob::small(random_bytes(4096, 0x1a7e));
        let config = Blob::small(
            format!(
                r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
                layer.digest
            )
            .into_bytes(),
        );
        Self { src16: BlobSource::random(16 << 20, 0x16), src64: BlobSource::random(64 << 20, 0x64), layer, config }
    }

    /// A small OCI image manifest; `n` goes into an annotation so each is distinct.
    pub fn manifest(&self, n: Option<u64>) -> String {
        let annotations = match n {
            Some(n) => format!(r#","annotations":{{"org.berth.bench.n":"{n}"}}"#),
            None => String::new(),
        };
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER}","digest":"{}","size":{}}}]{annotations}}}"#,
            self.config.digest, self.config.len, self.layer.digest, self.layer.len
        )
    }
}

pub type Metrics = BTreeMap<&'static str, f64>;

/// Runs one round against one server, recording metrics and problems.
pub async fn run_suite(
    server: &mut Server,
    fx: &Fixtures,
    opts: &Opts,
    variant_base: u64,
    label: &str,
    metrics: &mut Metrics,
    notes: &mut Vec<String>,
) {
    let addr = server.addr;
    let creds = server.creds.clone();
    let creds = creds.as_ref();
    macro_rules! step {
        ($name:expr, $body:expr) => {{
            let started = Instant::now();
            let (server_cpu0, own_cpu0) = (server.cpu_seconds(), own_cpu_seconds());
            let r: Result<()> = $body.await;
            // Where the two cores went: tells whether the load generator itself was the limit.
            let cpu = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => format!("{:.2}", b - a),
                _ => "?".to_string(),
            };
            let mib = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.1}"));
            eprintln!(
                "  {label}: {} ({:.1} s wall; CPU s: server {}, berth-bench {}; server RSS {} MiB, peak {} MiB)",
                $name,
                started.elapsed().as_secs_f64(),
                cpu(server_cpu0, server.cpu_seconds()),
                cpu(own_cpu0, own_cpu_seconds()),
                mib(server.status_mib("VmRSS")),
                mib(server.status_mib("VmHWM")),
            );
            if let Err(e) = r {
                notes.push(format!("{label}: {}: {e:#}", $name));
            }
            if let Err(e) = server.check_alive() {
                notes.push(format!("{label}: server died after {}: {e:#}", $name));
                return;
            }
        }};
    }

    if let Some(c) = creds {
        step!("create project bench (Harbor mode)", async {
            let mut conn = Conn::new(addr);
            c.create_project(&mut conn, "bench").await
        });
    }
    step!("push 16 MiB × 4", async {
        let blobs: Vec<Blob> = (0..opts.push_iters as u64 * 4).map(|i| fx.src16.variant(variant_base + i)).collect();
        let mibs = push_concurrent(addr, creds, "bench/push", &blobs, 4).await?;
        metrics.insert("push16x4", mibs);
        Ok(())
    });
    let pulled = fx.src64.variant(variant_base + 100);
    step!("push 64 MiB × 1", async {
        let blobs: Vec<Blob> = (0..opts.push_iters as u64).map(|i| fx.src64.variant(variant_base + 100 + i)).collect();
        let mibs = push_concurrent(addr, creds, "bench/push", &blobs, 1).await?;
        metrics.insert("push64", mibs);
        Ok(())
    });
    step!("push 64 MiB chunked", async {
        let mut conn = Conn::new(addr);
        conn.connect().await?;
        authorize(creds, &mut conn, &[repo_scope("bench/push", "pull,push")]).await?;
        let mut total = Duration::ZERO;
        let mut bytes = 0u64;
        for i in 0..opts.push_iters as u64 {
            let blob = fx.src64.variant(variant_base + 200 + i);
            let t = Instant::now();
            upload_chunked(&mut conn, "bench/push", &blob, CHUNK).await?;
            total += t.elapsed();
            bytes += blob.len;
        }
        metrics.insert("push_chunked", bytes as f64 / MIB / total.as_secs_f64());
        Ok(())
    });
    step!("pull 64 MiB", async {
        let (mibs, cpu) = pull(server, creds, "bench/push", &pulled, opts.pull_iters).await?;
        metrics.insert("pull", mibs);
        if let Some(cpu) = cpu {
            metrics.insert("pull_cpu", cpu);
        }
        Ok(())
    });

    let mut prepared = true;
    step!("prepare repositories", async {
        let r = prepare(addr, creds, fx).await;
        prepared = r.is_ok();
        r
    });
    if !prepared {
        notes.push(format!("{label}: HEAD/manifest/tags measurements skipped (preparation failed)"));
        return;
    }

    step!("new repositories", async {
        let (ops, cpu_ms) = new_repositories(server, creds, fx, opts).await?;
        metrics.insert("new_repo_ops", ops);
        if let Some(c) = cpu_ms {
            metrics.insert("new_repo_cpu_ms", c);
        }
        Ok(())
    });
    step!("blob HEAD", async {
        let path = format!("/v2/bench/app/blobs/{}", fx.layer.digest);
        let gen_req = move |_n: u64| (Method::HEAD, path.clone(), vec![], ReqBody::empty());
        let scopes = vec![repo_scope("bench/app", "pull")];
        let r = closed_loop(addr, creds, scopes, opts.conns, opts.duration, None, StatusCode::OK, Arc::new(gen_req))
            .await?;
        r.report(label, "blob HEAD", notes);
        metrics.insert("head_rps", r.rps());
        metrics.insert("head_p99", r.percentile_ms(0.99));
        Ok(())
    });
    step!("manifest GET", async {
        let gen_req = |_n: u64| {
            (
                Method::GET,
                "/v2/bench/app/manifests/latest".to_string(),
                vec![("accept", OCI_MANIFEST.to_string())],
                ReqBody::empty(),
            )
        };
        let scopes = vec![repo_scope("bench/app", "pull")];
        let r = closed_loop(addr, creds, scopes, opts.conns, opts.duration, None, StatusCode::OK, Arc::new(gen_req))
            .await?;
        r.report(label, "manifest GET", notes);
        metrics.insert("mget_rps", r.rps());
        metrics.insert("mget_p99", r.percentile_ms(0.99));
        Ok(())
    });
    step!("manifest PUT", async {
        let fx_manifest_base = fx.manifest(Some(0));
        let (head, tail) = split_manifest(&fx_manifest_base);
        let gen_req = move |n: u64| {
            let body = format!("{head}{n}{tail}");
            (
                Method::PUT,
                format!("/v2/bench/put/manifests/p{n}"),
                vec![("content-type", OCI_MANIFEST.to_string())],
                ReqBody::from_bytes(body),
            )
        };
        let scopes = vec![repo_scope("bench/put", "pull,push")];
        let r = closed_loop(
            addr,
            creds,
            scopes,
            opts.conns,
            opts.duration,
            Some(2_000_000),
            StatusCode::CREATED,
            Arc::new(gen_req),
        )
        .await?;
        r.report(label, "manifest PUT", notes);
        metrics.insert("mput_rps", r.rps());
        metrics.insert("mput_p99", r.percentile_ms(0.99));
        Ok(())
    });
    step!(format!("push {} tags", opts.tags), async {
        let manifest = Bytes::from(fx.manifest(None));
        let gen_req = move |n: u64| {
            (
                Method::PUT,
                format!("/v2/bench/tags/manifests/{}", tag_name(n)),
                vec![("content-type", OCI_MANIFEST.to_string())],
                ReqBody::from_bytes(manifest.clone()),
            )
        };
        let r = closed_loop(
            addr,
            creds,
            vec![repo_scope("bench/tags", "pull,push")],
            opts.conns,
            Duration::from_secs(600),
            Some(opts.tags as u64),
            StatusCode::CREATED,
            Arc::new(gen_req),
        )
        .await?;
        r.report(label, "tag PUT", notes);
        ensure!(r.ok == opts.tags as u64, "only {} of {} tags were created", r.ok, opts.tags);
        metrics.insert("tag_put_rps", r.rps());
        Ok(())
    });
    step!("tags list", async {
        let mut conn = Conn::new(addr);
        conn.connect().await?;
        authorize(creds, &mut conn, &[repo_scope("bench/tags", "pull")]).await?;
        let mut full = Duration::ZERO;
        let mut full_sorted = true;
        for _ in 0..opts.list_iters {
            let t = Instant::now();
            let tags = list_full(&mut conn, "bench/tags").await?;
            full += t.elapsed();
            full_sorted = check_tags(&tags, opts.tags, "full list")?;
        }
        if !full_sorted {
            notes.push(format!("{label}: full tags list is not in lexical order"));
        }
        metrics.insert("tags_full_ms", full.as_secs_f64() * 1000.0 / opts.list_iters as f64);
        let mut paged = Duration::ZERO;
        let mut pages = 0;
        let mut paged_sorted = true;
        for _ in 0..opts.list_iters {
            let t = Instant::now();
            let (tags, p) = list_paged(&mut conn, "bench/tags", 1000, opts.tags).await?;
            paged += t.elapsed();
            pages = p;
            paged_sorted = check_tags(&tags, opts.tags, "paged list")?;
        }
        if !paged_sorted {
            notes.push(format!("{label}: tags listed with n=1000 are not in lexical order across pages"));
        }
        let want_pages = opts.tags.div_ceil(1000);
        if pages != want_pages {
            notes.push(format!(
                "{label}: tags list with n=1000 took {pages} page(s) for {} tags (expected {want_pages}; is `n` ignored?)",
                opts.tags
            ));
        }
        metrics.insert("tags_paged_ms", paged.as_secs_f64() * 1000.0 / opts.list_iters as f64);
        Ok(())
    });
    if let Some(c) = creds {
        // The web UI's tags view of the same repository (Harbor mode only: the UI needs a
        // session): its first, middle and last keyset pages, server-rendered HTML.
        step!(format!("web UI tags view, {} tags", opts.tags), async {
            let mut conn = Conn::new(addr);
            conn.connect().await?;
            let (ms, size, sorted, natural) = ui_tags_pages(&mut conn, c, opts.tags, opts.list_iters * 4).await?;
            metrics.insert("ui_tags_p95_ms", percentile(&ms, 0.95));
            metrics.insert("ui_tags_kb", size as f64 / 1024.0);
            metrics.insert("ui_tags_sorted_p95_ms", percentile(&sorted, 0.95));
            metrics.insert("ui_tags_natural_p95_ms", percentile(&natural, 0.95));
            Ok(())
        });
        // The project's repository list with `opts.repos` more repositories (untimed
        // pushes), at its first, middle and last pages by name and by update time.
        step!(format!("web UI repository list, {} repositories", opts.repos), async {
            fill_repositories(server, creds, fx, opts.repos, opts.conns).await?;
            let mut conn = Conn::new(addr);
            conn.connect().await?;
            let (ms, size) = ui_repo_pages(&mut conn, c, opts.list_iters * 4).await?;
            metrics.insert("ui_repos_p95_ms", percentile(&ms, 0.95));
            metrics.insert("ui_repos_kb", size as f64 / 1024.0);
            Ok(())
        });
    }
}

/// Signs in through `POST /c/login` as the browser does; returns the session cookie.
async fn ui_sign_in(conn: &mut Conn, c: &Creds) -> Result<String> {
    let form = format!("principal={}&password={}", c.user, urlencode(&c.password));
    let r = conn
        .call(
            Method::POST,
            "/c/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            ReqBody::from_bytes(form),
        )
        .await?
        .expect(StatusCode::OK, "POST /c/login")?;
    Ok(r.header("set-cookie")
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("POST /c/login set no cookie"))?
        .to_string())
}

/// Repositories `bench/r00000`… pushed the way `new_repositories` pushes (mounts from
/// `bench/app`, then the manifest), `conns` at a time, until there are `count`.
async fn fill_repositories(
    server: &Server,
    creds: Option<&Creds>,
    fx: &Fixtures,
    count: usize,
    conns: usize,
) -> Result<()> {
    let counter = Arc::new(AtomicU64::new(0));
    let manifest = Bytes::from(fx.manifest(None));
    let mut handles = Vec::new();
    for _ in 0..conns.max(1) {
        let (counter, creds, manifest) = (counter.clone(), creds.cloned(), manifest.clone());
        let (layer, config) = (fx.layer.digest.clone(), fx.config.digest.clone());
        let mut conn = Conn::new(server.addr);
        handles.push(tokio::spawn(async move {
            loop {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= count as u64 {
                    return Ok::<(), anyhow::Error>(());
                }
                push_mounted(
                    &mut conn,
                    creds.as_ref(),
                    &format!("bench/r{n:05}"),
                    [layer.as_str(), config.as_str()],
                    &manifest,
                )
                .await?;
            }
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(())
}

/// A push into a repository that does not exist yet, as docker does it: each blob
/// mounted from `bench/app`, then the manifest; in Harbor mode a token before each step.
async fn push_mounted(
    conn: &mut Conn,
    creds: Option<&Creds>,
    repo: &str,
    blobs: [&str; 2],
    manifest: &Bytes,
) -> Result<()> {
    let mount_scopes = [repo_scope(repo, "pull,push"), repo_scope("bench/app", "pull")];
    for digest in blobs {
        authorize(creds, conn, &mount_scopes).await?;
        let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from=bench/app");
        conn.call(Method::POST, &path, &[], ReqBody::empty())
            .await?
            .expect(StatusCode::CREATED, "POST blobs/uploads/?mount=")?;
    }
    authorize(creds, conn, &[repo_scope(repo, "pull,push")]).await?;
    conn.call(
        Method::PUT,
        &format!("/v2/{repo}/manifests/latest"),
        &[("content-type", OCI_MANIFEST)],
        ReqBody::from_bytes(manifest.clone()),
    )
    .await?
    .expect(StatusCode::CREATED, "PUT manifest")?;
    Ok(())
}

/// Times `iters` rounds of the project's repository list (20 a page, the API's offset
/// paging) at its first, middle and last pages by name, and first and last by update
/// time; checks each page lists repositories. Returns the latencies (ms) and the largest page.
async fn ui_repo_pages(conn: &mut Conn, c: &Creds, iters: usize) -> Result<(Vec<f64>, usize)> {
    let sid = ui_sign_in(conn, c).await?;
    let r = conn
        .call(Method::GET, "/api/v2.0/projects/bench/repositories?page_size=1", &[("cookie", &sid)], ReqBody::empty())
        .await?
        .expect(StatusCode::OK, "GET repositories")?;
    let total: usize = r
        .header("x-total-count")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("GET repositories without X-Total-Count"))?;
    let last = total.div_ceil(20).max(1);
    let base = "/projects/bench/repos";
    let pages = [
        (base.to_string(), "bench/app"),
        (format!("{base}?page={}", last / 2), "bench/r"),
        (format!("{base}?page={last}"), "bench/"),
        (format!("{base}?sort=-update_time"), "bench/"),
        (format!("{base}?sort=-update_time&page={last}"), "bench/"),
    ];
    let mut ms = Vec::with_capacity(iters * pages.len());
    let mut largest = 0;
    for _ in 0..iters {
        for (path, want) in &pages {
            let t = Instant::now();
            let r = conn.call(Method::GET, path, &[("cookie", &sid)], ReqBody::empty()).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let r = r.expect(StatusCode::OK, "GET repository list")?;
            largest = largest.max(r.body.len());
            ensure!(String::from_utf8_lossy(&r.body).contains(want), "repository list {path} lacks {want}");
        }
    }
    Ok((ms, largest))
}

/// Signs in through `POST /c/login` and times `iters` rounds of the tags view at its
/// first, middle and last keyset pages; returns every latency (ms) and the largest page,
/// then the latencies of the first and second pages by push and by pull time, then those
/// of the first, middle and last pages in natural order (the bench's zero-padded names
/// are in the same order naturally and bytewise, so the same first tags are expected).
async fn ui_tags_pages(
    conn: &mut Conn,
    c: &Creds,
    tags: usize,
    iters: usize,
) -> Result<(Vec<f64>, usize, Vec<f64>, Vec<f64>)> {
    let sid = ui_sign_in(conn, c).await?;
    let base = "/projects/bench/repos/tags/-/tags";
    let mut pages = vec![(base.to_string(), tag_name(0))];
    for at in [tags / 2, tags.saturating_sub(10)] {
        let after = tag_name(at as u64);
        let first = tag_name(at as u64 + 1);
        pages.push((format!("{base}?after={after}"), first));
    }
    let mut ms = Vec::with_capacity(iters * pages.len());
    let mut largest = 0;
    for _ in 0..iters {
        for (path, first) in &pages {
            let t = Instant::now();
            let r = conn.call(Method::GET, path, &[("cookie", &sid)], ReqBody::empty()).await?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let r = r.expect(StatusCode::OK, "GET tags view")?;
            largest = largest.max(r.body.len());
            let html = String::from_utf8_lossy(&r.body);
            ensure!(html.contains(&format!(">{first}<")), "tags view {path} lacks its first tag {first}");
        }
    }
    // By push and pull time: the first page, and the second through its `rel="next"` link.
    let mut sorted_pages = Vec::new();
    for sort in ["pushed", "pulled"] {
        let first = format!("{base}?sort={sort}");
        let r = conn.call(Method::GET, &first, &[("cookie", &sid)], ReqBody::empty()).await?;
        let r = r.expect(StatusCode::OK, "GET tags view by time")?;
        let html = String::from_utf8_lossy(&r.body).into_owned();
        let at = html.find(r#" rel="next""#).ok_or_else(|| anyhow!("{first} has no next page"))?;
        let start = html[..at].rfind("href=\"").ok_or_else(|| anyhow!("{first}: next link without href"))? + 6;
        sorted_pages.push(first);
        sorted_pages.push(html[start..at - 1].replace("&amp;", "&"));
    }
    let mut sorted = Vec::with_capacity(iters * sorted_pages.len());
    for _ in 0..iters {
        for path in &sorted_pages {
            let t = Instant::now();
            let r = conn.call(Method::GET, path, &[("cookie", &sid)], ReqBody::empty()).await?;
            sorted.push(t.elapsed().as_secs_f64() * 1000.0);
            r.expect(StatusCode::OK, "GET tags view by time")?;
        }
    }
    let mut natural = Vec::with_capacity(iters * pages.len());
    for _ in 0..iters {
        for (path, first) in &pages {
            let path = match path.split_once('?') {
                Some((p, q)) => format!("{p}?sort=natural&{q}"),
                None => format!("{path}?sort=natural"),
            };
            let t = Instant::now();
            let r = conn.call(Method::GET, &path, &[("cookie", &sid)], ReqBody::empty()).await?;
            natural.push(t.elapsed().as_secs_f64() * 1000.0);
            let r = r.expect(StatusCode::OK, "GET tags view in natural order")?;
            let html = String::from_utf8_lossy(&r.body);
            ensure!(html.contains(&format!(">{first}<")), "tags view {path} lacks its first tag {first}");
        }
    }
    Ok((ms, largest, sorted, natural))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percentile(ms: &[f64], p: f64) -> f64 {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

fn own_cpu_seconds() -> Option<f64> {
    crate::server::proc_cpu_seconds(std::process::id()).ok()
}

fn split_manifest(m: &str) -> (String, String) {
    // The annotation value is "0"; split around it so each request only formats a number.
    let marker = r#""org.berth.bench.n":"0""#;
    let i = m.find(marker).expect("annotation present") + marker.len() - 2;
    (m[..i].to_string(), m[i + 1..].to_string())
}

fn tag_name(n: u64) -> String {
    format!("t{n:05}")
}

/// Checks count and uniqueness; returns whether the tags came in lexical order.
fn check_tags(tags: &[String], want: usize, what: &str) -> Result<bool> {
    ensure!(tags.len() == want, "{what}: {} tags listed, {want} expected", tags.len());
    let distinct: HashSet<&String> = tags.iter().collect();
    ensure!(distinct.len() == want, "{what}: duplicate tags ({} distinct)", distinct.len());
    Ok(tags.windows(2).all(|w| w[0] < w[1]))
}

async fn post_upload(conn: &mut Conn, repo: &str) -> Result<String> {
    let r = conn
        .call(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), &[], ReqBody::empty())
        .await?
        .expect(StatusCode::ACCEPTED, "POST blobs/uploads/")?;
    r.location()
}

pub async fn upload_monolithic(conn: &mut Conn, repo: &str, blob: &Blob) -> Result<()> {
    let loc = post_upload(conn, repo).await?;
    let put = with_query(&loc, &format!("digest={}", blob.digest));
    let r = conn
        .call(Method::PUT, &put, &[("content-type", OCTETS)], blob.body())
        .await?
        .expect(StatusCode::CREATED, "PUT upload?digest= (monolithic)")?;
    check_digest_header(&r, blob)
}

fn check_digest_header(r: &crate::http::Reply, blob: &Blob) -> Result<()> {
    match r.header("docker-content-digest") {
        Some(d) if d == blob.digest => Ok(()),
        Some(d) => bail!("upload answered Docker-Content-Digest {d}, pushed {}", blob.digest),
        None => Ok(()),
    }
}

pub async fn upload_chunked(conn: &mut Conn, repo: &str, blob: &Blob, chunk: u64) -> Result<()> {
    let mut loc = post_upload(conn, repo).await?;
    for (start, end, pieces) in blob.chunks(chunk) {
        let range = format!("{start}-{end}");
        let r = conn
            .call(
                Method::PATCH,
                &loc,
                &[("content-type", OCTETS), ("content-range", &range)],
                ReqBody::from_parts(pieces),
            )
            .await?
            .expect(StatusCode::ACCEPTED, "PATCH upload chunk")?;
        if let Some(got) = r.header("range")
            && got != format!("0-{end}")
        {
            bail!("PATCH {range}: Range header says {got}, expected 0-{end}");
        }
        loc = r.location()?;
    }
    let put = with_query(&loc, &format!("digest={}", blob.digest));
    let r = conn
        .call(Method::PUT, &put, &[], ReqBody::empty())
        .await?
        .expect(StatusCode::CREATED, "PUT upload?digest= (closing chunked upload)")?;
    check_digest_header(&r, blob)
}

/// Uploads `blobs` monolithically, `concurrency` at a time, each stream on its
/// own pre-opened connection; returns MiB/s over the timed batches.
async fn push_concurrent(
    addr: SocketAddr,
    creds: Option<&Creds>,
    repo: &str,
    blobs: &[Blob],
    concurrency: usize,
) -> Result<f64> {
    let mut conns = Vec::new();
    for _ in 0..concurrency {
        let mut c = Conn::new(addr);
        c.connect().await?;
        authorize(creds, &mut c, &[repo_scope(repo, "pull,push")]).await?;
        conns.push(c);
    }
    let mut total = Duration::ZERO;
    let mut bytes = 0u64;
    for batch in blobs.chunks(concurrency) {
        let t = Instant::now();
        let mut handles = Vec::new();
        for blob in batch {
            let mut conn = conns.pop().expect("one connection per stream");
            let blob = blob.clone();
            let repo = repo.to_string();
            handles.push(tokio::spawn(async move {
                let r = upload_monolithic(&mut conn, &repo, &blob).await;
                (conn, r)
            }));
        }
        for h in handles {
            let (conn, r) = h.await?;
            r?;
            conns.push(conn);
        }
        total += t.elapsed();
        bytes += batch.iter().map(|b| b.len).sum::<u64>();
    }
    Ok(bytes as f64 / MIB / total.as_secs_f64())
}

/// GETs `blob` `iters` times on one connection; MiB/s and server CPU s per GiB.
async fn pull(
    server: &Server,
    creds: Option<&Creds>,
    repo: &str,
    blob: &Blob,
    iters: usize,
) -> Result<(f64, Option<f64>)> {
    let mut conn = Conn::new(server.addr);
    authorize(creds, &mut conn, &[repo_scope(repo, "pull,push")]).await?;
    let path = format!("/v2/{repo}/blobs/{}", blob.digest);
    let (status, _) = conn.call_drain(Method::HEAD, &path, &[], ReqBody::empty()).await?;
    if status != StatusCode::OK {
        upload_monolithic(&mut conn, repo, blob).await?;
    }
    // Untimed warm-up pull that checks the content.
    let r = conn.call(Method::GET, &path, &[], ReqBody::empty()).await?.expect(StatusCode::OK, "GET blob")?;
    let got = format!("sha256:{}", hex::encode(Sha256::digest(&r.body)));
    ensure!(got == blob.digest, "GET blob returned content with digest {got}, want {}", blob.digest);
    let cpu0 = server.cpu_seconds();
    let t = Instant::now();
    let mut bytes = 0u64;
    for _ in 0..iters {
        let (status, n) = conn.call_drain(Method::GET, &path, &[], ReqBody::empty()).await?;
        ensure!(status == StatusCode::OK, "GET blob answered {status}");
        ensure!(n == blob.len, "GET blob returned {n} bytes, want {}", blob.len);
        bytes += n;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = match (cpu0, server.cpu_seconds()) {
        (Some(a), Some(b)) => Some((b - a) / (bytes as f64 / GIB)),
        _ => None,
    };
    Ok((bytes as f64 / MIB / secs, cpu))
}

/// Pushes config + layer into each repository used below and tags bench/app:latest.
async fn prepare(addr: SocketAddr, creds: Option<&Creds>, fx: &Fixtures) -> Result<()> {
    let mut conn = Conn::new(addr);
    for repo in ["bench/app", "bench/put", "bench/tags"] {
        authorize(creds, &mut conn, &[repo_scope(repo, "pull,push")]).await?;
        for blob in [&fx.layer, &fx.config] {
            upload_monolithic(&mut conn, repo, blob).await?;
        }
    }
    authorize(creds, &mut conn, &[repo_scope("bench/app", "pull,push")]).await?;
    let r = conn
        .call(Method::HEAD, &format!("/v2/bench/app/blobs/{}", fx.layer.digest), &[], ReqBody::empty())
        .await?
        .expect(StatusCode::OK, "HEAD blob")?;
    if let Some(len) = r.header("content-length") {
        ensure!(len == fx.layer.len.to_string(), "HEAD blob Content-Length {len}, want {}", fx.layer.len);
    }
    let m = fx.manifest(None);
    let r = conn
        .call(
            Method::PUT,
            "/v2/bench/app/manifests/latest",
            &[("content-type", OCI_MANIFEST)],
            ReqBody::from_bytes(m.clone()),
        )
        .await?
        .expect(StatusCode::CREATED, "PUT manifest")?;
    let want = format!("sha256:{}", hex::encode(Sha256::digest(m.as_bytes())));
    if let Some(d) = r.header("docker-content-digest") {
        ensure!(d == want, "PUT manifest answered Docker-Content-Digest {d}, want {want}");
    }
    let r = conn
        .call(Method::GET, "/v2/bench/app/manifests/latest", &[("accept", OCI_MANIFEST)], ReqBody::empty())
        .await?
        .expect(StatusCode::OK, "GET manifest")?;
    ensure!(r.body == m.as_bytes(), "GET manifest returned different bytes than were pushed");
    if let Some(ct) = r.header("content-type") {
        ensure!(ct == OCI_MANIFEST, "GET manifest Content-Type is {ct}, want {OCI_MANIFEST}");
    }
    Ok(())
}

async fn get_tags_page(conn: &mut Conn, path: &str) -> Result<(Vec<String>, Option<String>)> {
    let r = conn.call(Method::GET, path, &[], ReqBody::empty()).await?.expect(StatusCode::OK, "GET tags/list")?;
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    let tags = match v.get("tags") {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(str::to_string).ok_or_else(|| anyhow!("non-string tag {t}")))
            .collect::<Result<Vec<_>>>()?,
        Some(serde_json::Value::Null) | None => Vec::new(),
        Some(other) => bail!("tags is not an array: {other}"),
    };
    let next = match r.header("link") {
        Some(link) => Some(parse_next_link(link)?),
        None => None,
    };
    Ok((tags, next))
}

fn parse_next_link(link: &str) -> Result<String> {
    let (s, e) = (link.find('<'), link.find('>'));
    match (s, e) {
        (Some(s), Some(e)) if s < e && link[e..].contains("rel=\"next\"") => origin_form(&link[s + 1..e]),
        _ => bail!("unparseable Link header {link:?}"),
    }
}

async fn list_full(conn: &mut Conn, repo: &str) -> Result<Vec<String>> {
    let (tags, next) = get_tags_page(conn, &format!("/v2/{repo}/tags/list")).await?;
    ensure!(next.is_none(), "full tags list (no n) answered with a Link header");
    Ok(tags)
}

async fn list_paged(conn: &mut Conn, repo: &str, n: usize, expected: usize) -> Result<(Vec<String>, usize)> {
    let mut path = format!("/v2/{repo}/tags/list?n={n}");
    let mut all = Vec::new();
    let max_pages = expected / n.max(1) + 10;
    for page in 1..=max_pages {
        let (tags, next) = get_tags_page(conn, &path).await?;
        let len = tags.len();
        all.extend(tags);
        match next {
            Some(p) if len > 0 => path = p,
            Some(_) => bail!("page {page} was empty but had a Link to a next page"),
            None => return Ok((all, page)),
        }
    }
    bail!("more than {max_pages} pages; stopping")
}

/// A push of an image whose blobs are already in another repository, into a repository
/// that does not exist yet, as docker does it: mount the layer, mount the config, put the
/// manifest; in Harbor mode each of the three steps asks the token service first (for
/// the new repository, and for the source repository too when mounting). Returns pushes
/// per second and server CPU milliseconds per push.
async fn new_repositories(
    server: &Server,
    creds: Option<&Creds>,
    fx: &Fixtures,
    opts: &Opts,
) -> Result<(f64, Option<f64>)> {
    let counter = Arc::new(AtomicU64::new(0));
    let manifest = Bytes::from(fx.manifest(None));
    let cpu0 = server.cpu_seconds();
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut handles = Vec::new();
    for _ in 0..opts.conns {
        let (counter, creds, manifest) = (counter.clone(), creds.cloned(), manifest.clone());
        let (layer, config) = (fx.layer.digest.clone(), fx.config.digest.clone());
        let mut conn = Conn::new(server.addr);
        handles.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                push_mounted(
                    &mut conn,
                    creds.as_ref(),
                    &format!("bench/new{n}"),
                    [layer.as_str(), config.as_str()],
                    &manifest,
                )
                .await?;
                done += 1;
            }
            Ok::<u64, anyhow::Error>(done)
        }));
    }
    let mut done = 0;
    for h in handles {
        done += h.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    ensure!(done > 0, "no push completed");
    let cpu = match (cpu0, server.cpu_seconds()) {
        (Some(a), Some(b)) => Some((b - a) * 1000.0 / done as f64),
        _ => None,
    };
    Ok((done as f64 / secs, cpu))
}

type GenReq = Arc<dyn Fn(u64) -> (Method, String, Vec<(&'static str, String)>, ReqBody) + Send + Sync>;

pub struct LoopResult {
    pub ok: u64,
    pub bad: BTreeMap<u16, u64>,
    pub first_bad: Option<String>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub lat_us: Vec<u32>,
}

impl LoopResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((p * self.lat_us.len() as f64).ceil() as usize).clamp(1, self.lat_us.len()) - 1;
        self.lat_us[i] as f64 / 1000.0
    }

    fn report(&self, label: &str, what: &str, notes: &mut Vec<String>) {
        if !self.bad.is_empty() {
            let total: u64 = self.bad.values().sum::<u64>() + self.ok;
            let codes: Vec<String> = self.bad.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            notes.push(format!(
                "{label}: {what}: {} of {total} responses had an unexpected status ({}); first: {}",
                total - self.ok,
                codes.join(", "),
                self.first_bad.as_deref().unwrap_or("")
            ));
        }
        if self.errors > 0 {
            notes.push(format!(
                "{label}: {what}: {} transport errors; first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("")
            ));
        }
    }
}

/// `conns` keep-alive connections each sending requests back to back until
/// `duration` has passed or `max_total` requests were issued.
#[allow(clippy::too_many_arguments)]
async fn closed_loop(
    addr: SocketAddr,
    creds: Option<&Creds>,
    scopes: Vec<String>,
    conns: usize,
    duration: Duration,
    max_total: Option<u64>,
    expect: StatusCode,
    gen_req: GenReq,
) -> Result<LoopResult> {
    let max_total = max_total.unwrap_or(50_000_000);
    let mut opened = Vec::new();
    for _ in 0..conns {
        let mut c = Conn::new(addr);
        c.connect().await?;
        // Like a client that already holds its token for this repository.
        authorize(creds, &mut c, &scopes).await?;
        opened.push(c);
    }
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::new();
    for mut conn in opened {
        let counter = counter.clone();
        let gen_req = gen_req.clone();
        handles.push(tokio::spawn(async move {
            let mut r = LoopResult {
                ok: 0,
                bad: BTreeMap::new(),
                first_bad: None,
                errors: 0,
                first_error: None,
                elapsed: Duration::ZERO,
                lat_us: Vec::with_capacity(1 << 16),
            };
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                if n >= max_total {
                    break;
                }
                let (method, path, headers, body) = gen_req(n);
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let t = Instant::now();
                let res = async {
                    let resp = conn.send(method, &path, &h, body).await?;
                    if resp.status() == expect {
                        drain(resp).await?;
                        Ok::<_, anyhow::Error>(None)
                    } else {
                        Ok(Some(read_all(resp).await?))
                    }
                }
                .await;
                let lat = t.elapsed();
                match res {
                    Ok(None) => {
                        r.ok += 1;
                        r.lat_us.push(lat.as_micros().min(u32::MAX as u128) as u32);
                    }
                    Ok(Some(reply)) => {
                        r.lat_us.push(lat.as_micros().min(u32::MAX as u128) as u32);
                        *r.bad.entry(reply.status.as_u16()).or_default() += 1;
                        if r.first_bad.is_none() {
                            r.first_bad = Some(format!("{path} → {}", reply.describe()));
                        }
                    }
                    Err(e) => {
                        r.errors += 1;
                        if r.first_error.is_none() {
                            r.first_error = Some(format!("{path}: {e:#}"));
                        }
                        if r.errors > 100 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            r
        }));
    }
    let mut all = LoopResult {
        ok: 0,
        bad: BTreeMap::new(),
        first_bad: None,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        lat_us: Vec::new(),
    };
    for h in handles {
        let r = h.await?;
        all.ok += r.ok;
        for (c, n) in r.bad {
            *all.bad.entry(c).or_default() += n;
        }
        all.first_bad = all.first_bad.or(r.first_bad);
        all.errors += r.errors;
        all.first_error = all.first_error.or(r.first_error);
        all.lat_us.extend(r.lat_us);
    }
    all.elapsed = start.elapsed();
    all.lat_us.sort_unstable();
    if all.ok == 0 {
        let mut notes = Vec::new();
        all.report("", "", &mut notes);
        bail!("no successful request{}", notes.join("; "));
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_manifest_rebuilds_distinct_manifests() {
        let fx = Fixtures {
            src16: BlobSource::random(64, 1),
            src64: BlobSource::random(64, 2),
            layer: Blob::small(vec![1, 2, 3]),
            config: Blob::small(b"{}".to_vec()),
        };
        let (head, tail) = split_manifest(&fx.manifest(Some(0)));
        assert_eq!(format!("{head}42{tail}"), fx.manifest(Some(42)));
        let v: serde_json::Value = serde_json::from_str(&format!("{head}7{tail}")).unwrap();
        assert_eq!(v["annotations"]["org.berth.bench.n"], "7");
        assert_eq!(v["layers"][0]["size"], 3);
    }

    #[test]
    fn next_link_is_parsed() {
        let p = parse_next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).unwrap();
        assert_eq!(p, "/v2/a/tags/list?n=2&last=b");
        let p = parse_next_link(r#"<http://127.0.0.1:5000/v2/a/tags/list?last=b&n=2>; rel="next""#).unwrap();
        assert_eq!(p, "/v2/a/tags/list?last=b&n=2");
        assert!(parse_next_link(r#"<http://example.com/v2/x>; rel="next""#).is_err());
    }
}
