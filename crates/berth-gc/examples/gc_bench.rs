//! GC of many unreferenced blobs while pushes go on, on SQLite or PostgreSQL and local
//! disk, through the real job engine: how long GC takes, and push latency idle vs during GC.
//!
//!     cargo run --release -p berth-gc --example gc_bench -- [BLOBS] [WORKERS] [RATE] [PG_URL]
//!
//! BLOBS (default 100000) synthetic unreferenced blobs are created (rows via
//! `commit_blob`, 1-byte-ish files in the Distribution layout), then a GC runs with
//! WORKERS (default 5) while one client keeps pushing small images (two blobs and a
//! manifest each) through `Registry`: RATE pushes a second (a busy site's CI), or with
//! RATE 0 (the default) one after another without pause, which is a client no site has
//! but shows the worst case. The same client makes 2,000 pushes before GC and 2,000 after,
//! the idle figures. With PG_URL (`postgres://postgres@127.0.0.1:5432/postgres`)
//! the metadata goes to a scratch database created on that server and dropped at the end;
//! without it, to SQLite. `BERTH_GC_PAUSE_PERCENT` sets `gc.pause_percent` (by default
//! the server's: 100 on PostgreSQL, 0 on SQLite). Not a test: figures go to
//! docs/benchmarks.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_blob::FsBlobStore;
use berth_core::blobstore::{BlobReader, BlobStore, BodyError, ByteStream, ListedBlob, WriteError, WrittenPart};
use berth_core::registry::Registry;
use berth_core::store::gc::GcStore;
use berth_core::store::jobs::{JobStore, LogLevel, NewExecution, NewJob};
use berth_core::store::{BlobInfo, MetaStore};
use berth_core::{Digest, Hasher, Reference, RepoName};
use berth_gc::GarbageCollection;
use berth_jobs::{EngineConfig, JobService, KindSpec, kinds};
use berth_store_postgres::{PgOptions, PgStore};
use berth_store_sqlite::{SqliteStore, WriterStats};
use bytes::Bytes;

fn body(b: Bytes) -> ByteStream {
    struct Once(Option<Bytes>);
    impl futures_core::Stream for Once {
        type Item = Result<Bytes, BodyError>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.take().map(Ok))
        }
    }
    Box::pin(Once(Some(b)))
}

/// One push as a client makes it, adding each step's time (config, layer, manifest) to
/// `steps`: with a time window of 0, GC may collect a layer between its upload and the
/// manifest that references it (`MANIFEST_BLOB_UNKNOWN`, as ARCHITECTURE.md says); a
/// client then pushes again. The time includes the retries.
async fn push_steps(reg: &Registry, repo: &RepoName, n: u64, retries: &std::sync::atomic::AtomicU64) -> Push {
    let t = Instant::now();
    *FILE_TIMES.lock().unwrap() = [Duration::ZERO; 3];
    let mut steps = [Duration::ZERO; 3];
    while let Err(e) = try_push(reg, repo, n, &mut steps).await {
        assert!(matches!(e, berth_core::CoreError::ManifestBlobUnknown { .. }), "push failed: {e:?}");
        retries.fetch_add(1, Ordering::Relaxed);
    }
    Push { started: t, total: t.elapsed(), steps, files: *FILE_TIMES.lock().unwrap() }
}

/// One push's time, its steps' (config upload, layer upload, manifest) and, within
/// the uploads, the blob store's (writing the part, moving it into place, removing the
/// upload's directory); the rest of an upload is the database's and the digest lock's.
#[derive(Clone, Copy)]
struct Push {
    started: Instant,
    total: Duration,
    steps: [Duration; 3],
    files: [Duration; 3],
}

/// The blob store's time in the current push: only the one pushing client writes parts.
static FILE_TIMES: std::sync::Mutex<[Duration; 3]> = std::sync::Mutex::new([Duration::ZERO; 3]);

fn file_time(i: usize, d: Duration) {
    FILE_TIMES.lock().unwrap()[i] += d;
}

/// `FsBlobStore`, timing the writes a push makes into [`FILE_TIMES`].
struct Timed(Arc<FsBlobStore>);

#[async_trait::async_trait]
impl BlobStore for Timed {
    async fn stat(&self, d: &Digest) -> std::io::Result<Option<u64>> {
        self.0.stat(d).await
    }
    async fn open(&self, d: &Digest, start: u64, len: u64) -> std::io::Result<BlobReader> {
        self.0.open(d, start, len).await
    }
    async fn write_part(
        &self,
        repo: &RepoName,
        id: &str,
        hasher: Hasher,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<WrittenPart, WriteError> {
        let t = Instant::now();
        let r = self.0.write_part(repo, id, hasher, body, limit).await;
        file_time(0, t.elapsed());
        r
    }
    async fn hash_parts(&self, repo: &RepoName, id: &str, parts: &[String], h: Hasher) -> std::io::Result<Digest> {
        self.0.hash_parts(repo, id, parts, h).await
    }
    async fn commit(&self, repo: &RepoName, id: &str, parts: &[String], d: &Digest) -> std::io::Result<()> {
        let t = Instant::now();
        let r = self.0.commit(repo, id, parts, d).await;
        file_time(1, t.elapsed());
        r
    }
    async fn delete_upload(&self, repo: &RepoName, id: &str) -> std::io::Result<()> {
        let t = Instant::now();
        let r = self.0.delete_upload(repo, id).await;
        file_time(2, t.elapsed());
        r
    }
    async fn delete_part(&self, repo: &RepoName, id: &str, part: &str) -> std::io::Result<()> {
        self.0.delete_part(repo, id, part).await
    }
    async fn upload_dirs_older_than(&self, before: std::time::SystemTime) -> std::io::Result<Vec<(RepoName, String)>> {
        self.0.upload_dirs_older_than(before).await
    }
    async fn delete(&self, d: &Digest) -> std::io::Result<()> {
        self.0.delete(d).await
    }
    async fn check(&self) -> std::io::Result<()> {
        self.0.check().await
    }
    async fn list_blobs(&self, after: Option<&Digest>, limit: usize) -> std::io::Result<Vec<ListedBlob>> {
        self.0.list_blobs(after, limit).await
    }
    async fn owned(&self) -> std::io::Result<bool> {
        self.0.owned().await
    }
    async fn mark_owned(&self) -> std::io::Result<()> {
        self.0.mark_owned().await
    }
}

/// The mean of `times`, in ms, over `pushes`, as "a / b / c".
fn mean_ms(pushes: &[Push], times: impl Fn(&Push) -> [Duration; 3]) -> String {
    let n = pushes.len().max(1) as f64;
    (0..3)
        .map(|i| format!("{:.2}", pushes.iter().map(|p| times(p)[i].as_secs_f64() * 1000.0).sum::<f64>() / n))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The slowest 1 % of `pushes` (at least one), slowest first.
fn slowest(pushes: &[Push]) -> Vec<Push> {
    let mut v = pushes.to_vec();
    v.sort_by_key(|p| std::cmp::Reverse(p.total));
    v.truncate((v.len() / 100).max(1));
    v
}

/// The steps' mean over the slowest 1 % of pushes: which step makes the tail.
fn tail_steps(pushes: &[Push]) -> String {
    let slowest = &slowest(pushes);
    format!(
        "{}, in the uploads' blob store {} ({} pushes)",
        mean_ms(slowest, |p| p.steps),
        mean_ms(slowest, |p| p.files),
        slowest.len()
    )
}

async fn try_push(
    reg: &Registry,
    repo: &RepoName,
    n: u64,
    steps: &mut [Duration; 3],
) -> Result<(), berth_core::CoreError> {
    let config = format!(r#"{{"bench":{n}}}"#);
    let layer = format!("layer {n}");
    let mut ds = Vec::new();
    for (i, c) in [&config, &layer].into_iter().enumerate() {
        let d = Digest::sha256(c.as_bytes());
        let t = Instant::now();
        reg.monolithic_upload(repo, &d, body(Bytes::from(c.clone()))).await?;
        steps[i] += t.elapsed();
        ds.push(d);
    }
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        ds[0],
        config.len(),
        ds[1],
        layer.len()
    );
    let tag = Reference::Tag(format!("t{n}").parse().unwrap());
    let t = Instant::now();
    reg.put_manifest(repo, &tag, Some("application/vnd.oci.image.manifest.v1+json"), Bytes::from(m)).await?;
    steps[2] += t.elapsed();
    Ok(())
}

/// One client's pushes, numbered from `first`, until `enough` says so (given how many
/// were made). At RATE pushes a second, as described at the top (0: one after another).
async fn pushes(
    reg: &Registry,
    repo: &RepoName,
    first: u64,
    rate: u32,
    retries: &std::sync::atomic::AtomicU64,
    enough: impl Fn(usize) -> bool,
) -> Vec<Push> {
    let mut lat = Vec::new();
    // A paced client starts a push every 1/RATE s; a push that runs late delays the
    // next rather than bunching them (what a queue of CI jobs does).
    let mut tick = (rate > 0).then(|| {
        let mut t = tokio::time::interval(Duration::from_secs(1) / rate);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    while !enough(lat.len()) {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        lat.push(push_steps(reg, repo, first + lat.len() as u64, retries).await);
    }
    lat
}

/// Idle pushes measured before and after GC, each time: the same client as during GC,
/// so that only GC differs. (200 back-to-back pushes made p99 the third-slowest of
/// 200, which moved by 2x from one run to the next; with 600, the sixth-slowest, the
/// idle p99 of one machine still moved between 15 and 28 ms from run to run, while
/// the p99 of the 3,000-4,000 pushes during a GC of a million moved between 35 and 41.)
const IDLE_PUSHES: usize = 2000;

/// The 1-minute load average, to say how busy the machine was.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().map(str::to_owned))
        .unwrap_or_default()
}

/// Per thread name (digits dropped, so a pool is one line): nanoseconds on a core and
/// waiting for one, from `/proc/self/task/*/schedstat`.
fn sched() -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    // Adds one schedstat file (time on a core, time waiting for one) to `name`'s line.
    let mut add = |name: String, stat: &std::path::Path| {
        let stat = std::fs::read_to_string(stat).unwrap_or_default();
        let mut f = stat.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
        let e = out.entry(name).or_insert((0, 0));
        e.0 += f.next().unwrap_or(0);
        e.1 += f.next().unwrap_or(0);
    };
    for t in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let name = comm.trim().trim_end_matches(|c: char| c.is_ascii_digit() || c == '-').to_owned();
        add(name, &t.path().join("schedstat"));
    }
    // The database server's processes, summed (single-threaded each).
    for p in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if std::fs::read_to_string(p.path().join("comm")).is_ok_and(|c| c.trim() == "postgres") {
            add("postgres server".to_owned(), &p.path().join("schedstat"));
        }
    }
    out
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

/// The metadata store under test: GC, jobs and the registry's rows in one.
trait Store: MetaStore + GcStore + JobStore + 'static {
    /// SQLite's writer counters; PostgreSQL has no single writer to count.
    fn writer(&self) -> Option<WriterStats>;
}

impl Store for SqliteStore {
    fn writer(&self) -> Option<WriterStats> {
        Some(self.writer_stats())
    }
}

impl Store for PgStore {
    fn writer(&self) -> Option<WriterStats> {
        None
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).map_or(100_000, |a| a.parse().expect("BLOBS"));
    let workers: u8 = args.get(2).map_or(5, |a| a.parse().expect("WORKERS"));
    let rate: u32 = args.get(3).map_or(0, |a| a.parse().expect("RATE"));
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = args.get(4) else {
        println!("metadata: SQLite");
        let store = Arc::new(SqliteStore::open(&dir.path().join("meta.db")).unwrap());
        return bench(store, dir.path(), n, workers, rate, true).await;
    };
    println!("metadata: PostgreSQL");
    let (admin, conn) = tokio_postgres::connect(pg, tokio_postgres::NoTls).await.expect("PostgreSQL at PG_URL");
    tokio::spawn(conn);
    let name = format!("berth_gc_bench_{}", std::process::id());
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = match pg.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("PG_URL needs a database part"),
    };
    let store = Arc::new(PgStore::connect(PgOptions::new(url.clone())).await.unwrap());
    // The rows in a few statements: one commit per row took 13 minutes for a million,
    // and the setup is not what is measured. The first row through `commit_blob` makes
    // the repository; the rest are the rows and links `commit_blob` would write.
    let t = Instant::now();
    let junk: RepoName = JUNK.parse().unwrap();
    store.commit_blob(&junk, &BlobInfo { digest: junk_digest(0), size: 1 }, None).await.unwrap();
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let digest_sql = "'sha256:' || encode(sha256(convert_to('junk ' || i, 'UTF8')), 'hex')";
    let mut from = 1u64;
    while from < n {
        let to = (from + 100_000).min(n) - 1;
        db.batch_execute(&format!(
            "INSERT INTO blobs (digest, size, state, last_ref_at, created_at)
                  SELECT {digest_sql}, 1, 'live', extract(epoch FROM now())::bigint, extract(epoch FROM now())::bigint
                    FROM generate_series({from}, {to}) i;
             INSERT INTO repository_blobs (repository_id, digest, created_at)
                  SELECT r.id, {digest_sql}, extract(epoch FROM now())::bigint
                    FROM generate_series({from}, {to}) i, repositories r WHERE r.name = '{JUNK}';"
        ))
        .await
        .unwrap();
        from = to + 1;
    }
    let last = junk_digest(n.saturating_sub(1)).to_string();
    let found: i64 = db.query_one("SELECT count(*) FROM blobs WHERE digest = $1", &[&last]).await.unwrap().get(0);
    assert!(n < 2 || found == 1, "the SQL digests must be the example's own");
    println!("rows: {n} in {:.1} s (SQL)", t.elapsed().as_secs_f64());
    bench(store.clone(), dir.path(), n, workers, rate, false).await;
    drop(store);
    if let Err(e) = admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await {
        eprintln!("could not drop {name}: {e}");
    }
}

const JUNK: &str = "bench/junk";

fn junk_digest(i: u64) -> Digest {
    Digest::sha256(format!("junk {i}").as_bytes())
}

/// With `rows` false the blob rows are already there (see `main`): only files are made.
async fn bench<S: Store>(store: Arc<S>, dir: &std::path::Path, n: u64, workers: u8, rate: u32, rows: bool) {
    let root = dir.join("storage");
    let blobs = Arc::new(FsBlobStore::open(&root).unwrap());
    let reg = Arc::new(Registry::new(store.clone(), Arc::new(Timed(blobs.clone()))));

    let t = Instant::now();
    let junk: RepoName = JUNK.parse().unwrap();
    let digest = junk_digest;
    // Files on a few threads of their own, rows from many concurrent tasks so that the
    // store's commits carry many rows each: the setup is not what is measured.
    let files: Vec<_> = (0..4u64)
        .map(|w| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut i = w;
                while i < n {
                    let hex = digest(i).hex().to_owned();
                    let p = root.join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(&hex);
                    std::fs::create_dir_all(&p).unwrap();
                    std::fs::write(p.join("data"), b"x").unwrap();
                    i += 4;
                }
            })
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    const ROW_TASKS: u64 = 128;
    let row_tasks = if rows { ROW_TASKS } else { 0 };
    for w in 0..row_tasks {
        let (store, junk) = (store.clone(), junk.clone());
        tasks.spawn(async move {
            let mut i = w;
            while i < n {
                store.commit_blob(&junk, &BlobInfo { digest: digest(i), size: 1 }, None).await.unwrap();
                i += ROW_TASKS;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    for f in files {
        f.join().unwrap();
    }
    println!("setup: {n} unreferenced blobs in {:.1} s", t.elapsed().as_secs_f64());

    // The setup's commits leave a large WAL for the checkpoint thread to copy back, and
    // its files are dirty pages the kernel writes back for half a minute; idle pushes
    // measured meanwhile would be slow for reasons of their own (and flatter the ratio),
    // so write them out now, give the checkpoint time, and measure idle pushes again once
    // GC has ended.
    let _ = std::process::Command::new("sync").status();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let repo: RepoName = "bench/app".parse().unwrap();
    let retries = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let idle_pushes = pushes(&reg, &repo, 0, rate, &retries, |n| n >= IDLE_PUSHES).await;

    let engine = EngineConfig { poll: Duration::from_millis(20), ..EngineConfig::new("bench", "bench") };
    // As `gc.pause_percent`, from the same variable the server reads, and unset resolved
    // by the server's own rule for this database.
    let mut cfg = berth_config::Config::default();
    if let Some(url) = std::env::args().nth(4) {
        cfg.database.url = url;
    }
    cfg.gc.pause_percent =
        std::env::var("BERTH_GC_PAUSE_PERCENT").ok().map(|v| v.parse().expect("BERTH_GC_PAUSE_PERCENT"));
    let pause_percent = cfg.gc_pause_percent();
    let handler = GarbageCollection { store: store.clone(), blobs, time_window_hours: 0, uploads: None, pause_percent };
    let svc = JobService::builder(store.clone(), engine)
        .kind(KindSpec {
            name: kinds::GARBAGE_COLLECTION,
            handler: Arc::new(handler),
            cluster_limit: 1,
            local_workers: 1,
            max_runtime: None,
        })
        .build();
    tokio::spawn(svc.clone().run(Duration::from_secs(1)));
    let done = Arc::new(AtomicBool::new(false));
    let pusher = tokio::spawn({
        let (reg, repo, done, retries) = (reg.clone(), repo.clone(), done.clone(), retries.clone());
        async move { pushes(&reg, &repo, 1_000_000, rate, &retries, |_| done.load(Ordering::SeqCst)).await }
    });
    let params = serde_json::json!({ "workers": workers }).to_string();
    let exec = NewExecution {
        vendor_type: kinds::GARBAGE_COLLECTION.into(),
        vendor_id: 0,
        trigger: "MANUAL".into(),
        extra_attrs: params.clone(),
    };
    let w0 = store.writer();
    let load0 = load();
    let t = Instant::now();
    // Where the cores went over 5 s of the run: each thread's time on a core and waiting
    // for one (a push's threads waiting is what makes it slow).
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let a = sched();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let b = sched();
        let rows: Vec<String> = b
            .iter()
            .map(|(k, v)| {
                let o = a.get(k).copied().unwrap_or((0, 0));
                format!("{k} {:.0}/{:.0}", v.0.saturating_sub(o.0) as f64 / 5e7, v.1.saturating_sub(o.1) as f64 / 5e7)
            })
            .collect();
        println!("threads over 5 s, % of a core running / waiting for a core: {}", rows.join(", "));
    });
    let id = svc.start(&exec, &[NewJob::new(kinds::GARBAGE_COLLECTION, params)]).await.unwrap();
    let jobs: &S = &store;
    loop {
        let e = jobs.execution(id).await.unwrap().unwrap();
        if !matches!(e.counts.harbor_status(), "Running" | "Pending") {
            if e.counts.harbor_status() != "Success" {
                for job in jobs.execution_tasks(id).await.unwrap() {
                    let log = jobs.job_log(job.id).await.unwrap();
                    for l in &log[log.len().saturating_sub(20)..] {
                        eprintln!("job {} attempt {}: {:?} {}", job.id, l.attempt, l.level, l.message);
                    }
                }
                panic!("GC ended {}", e.counts.harbor_status());
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gc_secs = t.elapsed().as_secs_f64();
    let w1 = store.writer();
    done.store(true, Ordering::SeqCst);
    let during_pushes = pusher.await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let after_pushes = pushes(&reg, &repo, 2_000_000, rate, &retries, |n| n >= IDLE_PUSHES).await;
    let times = |v: &[Push]| v.iter().map(|p| p.total).collect::<Vec<_>>();
    let (mut idle, mut during, mut idle_after) = (times(&idle_pushes), times(&during_pushes), times(&after_pushes));
    let task = jobs.execution_tasks(id).await.unwrap().remove(0);
    let log = jobs.job_log(task.id).await.unwrap();
    let line = |what: &str| log.iter().rev().find(|l| l.message.contains(what)).map(|l| l.message.clone());
    let summary = line("blobs deleted");
    println!(
        "GC: {n} blobs in {gc_secs:.1} s ({:.0} blobs/s), workers {workers}, pause {pause_percent} %, pushes {}: {}",
        n as f64 / gc_secs,
        if rate == 0 { "unpaced".to_owned() } else { format!("{rate}/s") },
        summary.unwrap_or_default()
    );
    println!("GC's {}", line("time spent").unwrap_or_default());
    // What a run left behind, and any attempt's warnings: a claim that ended a digest
    // range early, or a retried attempt, shows here.
    let left = store.gc_candidates(0, None, 1000).await.unwrap();
    let attempts = log.iter().map(|l| l.attempt).max().unwrap_or(0);
    let warnings: Vec<&str> =
        log.iter().filter(|l| l.level != LogLevel::Info).map(|l| l.message.as_str()).take(5).collect();
    println!(
        "left unreferenced after GC: {}{} (first {:?}); attempts {attempts}; warnings and errors {warnings:?}",
        left.len(),
        if left.len() == 1000 { "+" } else { "" },
        left.first().map(|b| b.digest.to_string())
    );
    let (during99, before99, after99) = (pct(&mut during, 0.99), pct(&mut idle, 0.99), pct(&mut idle_after, 0.99));
    println!(
        "push (2 blobs + manifest) idle before GC: p50 {:.2} ms p99 {before99:.2} ms ({} pushes); \
         during GC: p50 {:.2} ms p99 {during99:.2} ms ({} pushes); idle after GC: p50 {:.2} ms p99 {after99:.2} ms ({} pushes)",
        pct(&mut idle, 0.5),
        idle.len(),
        pct(&mut during, 0.5),
        during.len(),
        pct(&mut idle_after, 0.5),
        idle_after.len()
    );
    println!(
        "push steps' mean (config upload / layer upload / manifest), ms: idle before {}; during GC {}",
        mean_ms(&idle_pushes, |p| p.steps),
        mean_ms(&during_pushes, |p| p.steps)
    );
    println!(
        "steps' mean of the slowest 1 % (config / layer / manifest; write part / move into place / remove \
         upload), ms: idle before {}; during GC {}; idle after {}",
        tail_steps(&idle_pushes),
        tail_steps(&during_pushes),
        tail_steps(&after_pushes)
    );
    println!("push p99 during GC / idle: {:.2}x before GC, {:.2}x after GC", during99 / before99, during99 / after99);
    // When the slowest pushes during GC started, to set beside what the server or the
    // machine was doing then (GC started at the Unix time printed).
    let gc_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
        - t.elapsed().as_secs_f64();
    let slow: Vec<String> = slowest(&during_pushes)
        .iter()
        .map(|p| format!("{:.2}s:{:.0}", p.started.duration_since(t).as_secs_f64(), p.total.as_secs_f64() * 1000.0))
        .collect();
    println!("slowest 1 % during GC (s after GC's start at Unix {gc_unix:.2}: ms): {}", slow.join(" "));
    if let (Some(w0), Some(w1)) = (w0, w1) {
        println!(
            "SQLite writer during GC (GC and pushes): {} write jobs, {} commits; GC's (background) {} jobs, {:.1} s \
             busy, longest {:.1} ms",
            w1.jobs - w0.jobs,
            w1.commits - w0.commits,
            w1.background_jobs - w0.background_jobs,
            (w1.background_busy - w0.background_busy).as_secs_f64(),
            w1.background_max.as_secs_f64() * 1000.0,
        );
    }
    println!(
        "push max during GC {:.2} ms; {} pushes retried; load average {load0} at GC start, {} at its end",
        during.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        retries.load(Ordering::Relaxed),
        load()
    );
    let _ = store.repo_blob(&repo, &Digest::sha256(b"x")).await;
}
