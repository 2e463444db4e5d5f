//! berth-bench: Berth versus the CNCF Distribution registry, side by side,
//! over the OCI Distribution HTTP API on 127.0.0.1. See `--help`.

mod auth;
mod blob;
mod http;
mod scan;
mod server;
mod workloads;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use server::{Kind, Server, Spec};
use workloads::{Fixtures, Metrics, Opts};

const USAGE: &str = "\
berth-bench — side-by-side benchmark of Berth and CNCF Distribution (loopback only)

USAGE: berth-bench [OPTIONS]

Servers (each SPEC is `berth:PATH`, `distribution:PATH`, `url:http://127.0.0.1:PORT`,
a bare PATH of the column's own kind, or `none` to leave the column pending):
  --berth SPEC          Berth's columns        [default: target/release/berth]
  --modes LIST          Berth's modes, one column each: harbor (users, projects and
                        docker-style token flows), open (no authentication, as
                        Distribution runs)     [default: harbor,open]
  --distribution SPEC   the reference column   [default: /usr/bin/docker-registry]

Workload:
  --rounds N            rounds per server, alternating, median reported [default: 3]
  --duration SECS       length of each req/s measurement                 [default: 5]
  --conns N             connections for req/s measurements               [default: 16]
  --tags N              tags in the tags-list repository                 [default: 10000]
  --push-iters N        batches per push measurement                     [default: 4]
  --pull-iters N        GETs of the 64 MiB blob per round                [default: 16]
  --list-iters N        tags listings (full and paged) per round         [default: 5]
  --repos N             repositories in the web UI's repository list     [default: 10000]
  --quick               1 round, 1 s, 1000 tags, 1000 repositories, 1 push batch, 4 pulls
                        (smoke test)
  --tmp DIR             where the servers' temporary data dirs go        [default: $TMPDIR or /tmp]

The scanner's benchmark (issue 12) instead of the comparison (Berth only, Harbor mode):
  --scan                scan time of a generated image against generated OSV data, and
                        pushes/pulls with and without a scan running (--rounds pairs)
  --scan-image-mib N    the image's uncompressed size                    [default: 500]
  --scan-packages N     Debian packages installed in it                  [default: 400]
  --scan-records N      OSV records imported                             [default: 200000]
  --scan-io N           pushes+pulls of a 16 MiB layer per round         [default: 8]

Each round starts every server afresh on its own temporary data dir (startup
time), restarts it (SIGTERM, start again: restart time, then idle RSS), runs all
workloads, reads peak RSS, restarts it once more (restart time with data), and
stops it and removes the dir. Berth is run as `berth serve --listen 127.0.0.1:0 --data-dir DIR`
with BERTH_AUTH_MODE=harbor or open and must print `listening on 127.0.0.1:PORT`. In Harbor
mode the clients behave like docker: Basic credentials only for the token service, a token
per repository scope, a new one per step of a mounting push. Distribution gets a generated
config (filesystem storage, inmemory blob descriptor cache, access log off, no auth).
Ratios are each Berth column over Distribution.
";

struct MetricDef {
    key: &'static str,
    label: &'static str,
    higher_is_better: bool,
}

const METRICS: &[MetricDef] = &[
    MetricDef {
        key: "new_repo_ops",
        label: "push to a new repository: mount, mount, manifest (pushes/s)",
        higher_is_better: true,
    },
    MetricDef {
        key: "new_repo_cpu_ms",
        label: "push to a new repository: server CPU per push (ms)",
        higher_is_better: false,
    },
    MetricDef { key: "push16x4", label: "blob push, 16 MiB × 4 concurrent (MiB/s)", higher_is_better: true },
    MetricDef { key: "push64", label: "blob push, 64 MiB × 1 stream (MiB/s)", higher_is_better: true },
    MetricDef { key: "push_chunked", label: "blob push, 64 MiB chunked 8 MiB PATCH (MiB/s)", higher_is_better: true },
    MetricDef { key: "pull", label: "blob pull, 64 MiB GET (MiB/s)", higher_is_better: true },
    MetricDef { key: "pull_cpu", label: "server CPU per GiB pulled (s)", higher_is_better: false },
    MetricDef { key: "head_rps", label: "blob HEAD, 16 conns (req/s)", higher_is_better: true },
    MetricDef { key: "head_p99", label: "blob HEAD p99 (ms)", higher_is_better: false },
    MetricDef { key: "mget_rps", label: "manifest GET, 16 conns (req/s)", higher_is_better: true },
    MetricDef { key: "mget_p99", label: "manifest GET p99 (ms)", higher_is_better: false },
    MetricDef { key: "mput_rps", label: "manifest PUT, distinct, 16 conns (req/s)", higher_is_better: true },
    MetricDef { key: "mput_p99", label: "manifest PUT p99 (ms)", higher_is_better: false },
    MetricDef { key: "tag_put_rps", label: "tag PUT, same manifest, 16 conns (req/s)", higher_is_better: true },
    MetricDef { key: "tags_full_ms", label: "tags list, full, N tags (ms)", higher_is_better: false },
    MetricDef { key: "tags_paged_ms", label: "tags list, n=1000 pages, N tags (ms)", higher_is_better: false },
    MetricDef {
        key: "ui_tags_p95_ms",
        label: "web UI tags view, N tags, first/middle/last page p95 (ms)",
        higher_is_better: false,
    },
    MetricDef { key: "ui_tags_kb", label: "web UI tags view, largest page (KiB)", higher_is_better: false },
    MetricDef {
        key: "ui_tags_sorted_p95_ms",
        label: "web UI tags view, N tags, by push and pull time, first/second page p95 (ms)",
        higher_is_better: false,
    },
    MetricDef {
        key: "ui_tags_natural_p95_ms",
        label: "web UI tags view, N tags, natural order, first/middle/last page p95 (ms)",
        higher_is_better: false,
    },
    MetricDef {
        key: "ui_repos_p95_ms",
        label: "web UI repository list, N repositories, first/middle/last page p95 (ms)",
        higher_is_better: false,
    },
    MetricDef { key: "ui_repos_kb", label: "web UI repository list, largest page (KiB)", higher_is_better: false },
    MetricDef {
        key: "startup_fresh_ms",
        label: "startup, empty data dir: spawn → first answer on /v2/ (ms)",
        higher_is_better: false,
    },
    MetricDef { key: "startup_ms", label: "startup, restart on that data dir (ms)", higher_is_better: false },
    MetricDef {
        key: "restart_data_ms",
        label: "startup, restart after the round's workload (ms)",
        higher_is_better: false,
    },
    MetricDef { key: "idle_rss", label: "idle RSS after restart (MiB)", higher_is_better: false },
    MetricDef { key: "peak_rss", label: "peak RSS, VmHWM at end of round (MiB)", higher_is_better: false },
];

struct Args {
    scan: Option<scan::ScanOpts>,
    berth: Option<Spec>,
    modes: Vec<bool>,
    distribution: Option<Spec>,
    opts: Opts,
}

fn parse_args() -> Result<Args> {
    let mut berth = "target/release/berth".to_string();
    let mut distribution = "/usr/bin/docker-registry".to_string();
    let mut modes = vec![true, false];
    let mut opts = Opts {
        rounds: 3,
        duration: Duration::from_secs(5),
        conns: 16,
        tags: 10_000,
        push_iters: 4,
        pull_iters: 16,
        list_iters: 5,
        repos: 10_000,
        tmp: std::env::temp_dir(),
    };
    let mut scan_mode = false;
    let mut sopts = scan::ScanOpts {
        image_mib: 500,
        packages: 400,
        records: 200_000,
        rounds: 3,
        io_per_round: 8,
        tmp: std::env::temp_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        let num = |v: String| -> Result<usize> {
            let n: usize = v.parse().with_context(|| format!("{a}: not a number: {v}"))?;
            if n == 0 {
                bail!("{a} must be at least 1");
            }
            Ok(n)
        };
        match a.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--berth" => berth = val()?,
            "--distribution" => distribution = val()?,
            "--modes" => {
                modes = val()?
                    .split(',')
                    .map(|m| match m.trim() {
                        "harbor" => Ok(true),
                        "open" => Ok(false),
                        other => bail!("--modes: unknown mode {other:?}; use harbor, open or harbor,open"),
                    })
                    .collect::<Result<_>>()?;
            }
            "--rounds" => opts.rounds = num(val()?)?,
            "--duration" => opts.duration = Duration::from_secs_f64(num(val()?)? as f64),
            "--conns" => opts.conns = num(val()?)?,
            "--tags" => opts.tags = num(val()?)?,
            "--push-iters" => opts.push_iters = num(val()?)?,
            "--pull-iters" => opts.pull_iters = num(val()?)?,
            "--list-iters" => opts.list_iters = num(val()?)?,
            "--repos" => opts.repos = num(val()?)?,
            "--tmp" => opts.tmp = PathBuf::from(val()?),
            "--scan" => scan_mode = true,
            "--scan-image-mib" => sopts.image_mib = num(val()?)?,
            "--scan-packages" => sopts.packages = num(val()?)?,
            "--scan-records" => sopts.records = num(val()?)?,
            "--scan-io" => sopts.io_per_round = num(val()?)?,
            "--quick" => {
                opts.rounds = 1;
                opts.duration = Duration::from_secs(1);
                opts.tags = 1000;
                opts.repos = 1000;
                opts.push_iters = 1;
                opts.pull_iters = 4;
                opts.list_iters = 2;
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    let berth = Spec::parse(&berth, Kind::Berth)?;
    // The scan benchmark measures Berth alone.
    let distribution = if scan_mode { None } else { Spec::parse(&distribution, Kind::Distribution)? };
    for s in [&berth, &distribution].into_iter().flatten() {
        if s.kind != Kind::External && !s.program.exists() {
            bail!("{} does not exist (use `none` to leave that column pending)", s.program.display());
        }
    }
    if berth.is_none() && distribution.is_none() {
        bail!("nothing to benchmark: both columns are `none`");
    }
    if berth.as_ref().is_some_and(|b| b.kind == Kind::External) && modes.contains(&true) {
        bail!(
            "an external Berth (url:) can only be measured with --modes open (the tool does not know its admin password)"
        );
    }
    let scan = scan_mode.then(|| scan::ScanOpts { rounds: opts.rounds, tmp: opts.tmp.clone(), ..sopts });
    Ok(Args { scan, berth, modes, distribution, opts })
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-bench: {e:#}");
            std::process::exit(2);
        }
    };
    // Dropping the run future on ctrl-c kills the servers and removes their dirs.
    let result = tokio::select! {
        r = run(args) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if let Err(e) = result {
        eprintln!("berth-bench: {e:#}");
        std::process::exit(1);
    }
}

struct Column {
    name: &'static str,
    spec: Option<Spec>,
    rounds: Vec<Metrics>,
}

async fn run(args: Args) -> Result<()> {
    let Args { scan, berth, modes, distribution, opts } = args;
    if let Some(sopts) = scan {
        eprintln!("machine: {}", machine_summary());
        let spec = berth.filter(|b| b.kind == Kind::Berth).context("--scan needs --berth PATH (a berth binary)")?;
        return scan::run(spec, sopts).await;
    }
    eprintln!("machine: {}", machine_summary());
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let one: f64 = load.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        if one > 0.7 {
            eprintln!("warning: load average is {one:.2}; other work on this machine will skew the figures");
        }
    }
    let t = Instant::now();
    let fx = Fixtures::new();
    eprintln!("generated test blobs and digests in {:.1} s", t.elapsed().as_secs_f64());

    // Distribution last: it is the reference the ratios divide by.
    let mut cols: Vec<Column> = modes
        .iter()
        .map(|&harbor| Column {
            name: if harbor { "Berth (Harbor)" } else { "Berth (open)" },
            spec: berth.clone().map(|s| Spec { harbor, ..s }),
            rounds: Vec::new(),
        })
        .collect();
    cols.push(Column { name: "Distribution", spec: distribution, rounds: Vec::new() });
    for (i, c) in cols.iter().enumerate() {
        let what = c.spec.as_ref().map_or("pending (not run)".to_string(), Spec::describe);
        eprintln!("column {}: {} = {what}", i + 1, c.name);
    }
    eprintln!("server data dirs under {}", opts.tmp.display());
    let mut notes = Vec::new();
    for round in 0..opts.rounds {
        // Rotate which server goes first, so drift and warm caches favour none.
        let order: Vec<usize> = (0..cols.len()).map(|i| (i + round) % cols.len()).collect();
        for ci in order {
            let Some(spec) = cols[ci].spec.clone() else {
                continue;
            };
            let label = format!("{} round {}", cols[ci].name, round + 1);
            eprintln!("{label}: starting {}", spec.describe());
            let mut m = Metrics::new();
            match Server::start(&spec, &opts.tmp).await {
                Ok(mut server) => {
                    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                    if let Some(s) = server.startup {
                        m.insert("startup_fresh_ms", ms(s));
                    }
                    let owned = spec.kind != Kind::External;
                    if owned {
                        // First start may initialise the data dir; time a plain restart as well.
                        if let Err(e) = server.restart().await {
                            notes.push(format!("{label}: restart failed: {e:#}"));
                            cols[ci].rounds.push(m);
                            continue;
                        }
                        if let Some(s) = server.startup {
                            m.insert("startup_ms", ms(s));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Some(rss) = server.status_mib("VmRSS") {
                        m.insert("idle_rss", rss);
                    }
                    let base = (round as u64) << 32 | (ci as u64) << 24;
                    workloads::run_suite(&mut server, &fx, &opts, base, &label, &mut m, &mut notes).await;
                    if let Some(hwm) = server.status_mib("VmHWM") {
                        m.insert("peak_rss", hwm);
                    }
                    if owned && server.check_alive().is_ok() {
                        match server.restart().await {
                            Ok(()) => {
                                if let Some(s) = server.startup {
                                    m.insert("restart_data_ms", ms(s));
                                }
                            }
                            Err(e) => notes.push(format!("{label}: restart after the workload failed: {e:#}")),
                        }
                        if let Err(e) = server.stop().await {
                            notes.push(format!("{label}: {e:#}"));
                        }
                    }
                    for line in server.log_problems(5) {
                        notes.push(format!("{label}: server log: {line}"));
                    }
                    let t = Instant::now();
                    drop(server);
                    eprintln!("  {label}: stopped, data dir removed ({:.1} s)", t.elapsed().as_secs_f64());
                }
                Err(e) => notes.push(format!("{label}: could not start: {e:#}")),
            }
            cols[ci].rounds.push(m);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    print_tables(&cols, &opts);
    if !notes.is_empty() {
        println!("\nProblems seen during the runs:");
        for n in &notes {
            println!("- {n}");
        }
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn fmt(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        let s = format!("{v:.0}");
        let (sign, digits) = s.split_at(if s.starts_with('-') { 1 } else { 0 });
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn print_tables(cols: &[Column], opts: &Opts) {
    let cell = |c: &Column, key: &str| -> (String, Option<f64>) {
        if c.spec.is_none() {
            return ("pending".into(), None);
        }
        match median(c.rounds.iter().filter_map(|m| m.get(key).copied()).collect()) {
            Some(v) => (fmt(v), Some(v)),
            None => ("n/a".into(), None),
        }
    };
    println!(
        "\n{} round(s) per server, alternating; medians. {} s per req/s measurement, {} connections, {} tags.",
        opts.rounds,
        opts.duration.as_secs_f64(),
        opts.conns,
        opts.tags
    );
    println!("Machine: {}. Data dirs under {} ({}).\n", machine_summary(), opts.tmp.display(), fs_type(&opts.tmp));
    let (reference, others) = cols.split_last().expect("the reference column");
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    let ratios: Vec<String> = others.iter().map(|c| format!("{} / {}", c.name, reference.name)).collect();
    println!("| metric | {} | {} | better is |", names.join(" | "), ratios.join(" | "));
    println!("|---|{}{}---|", "---:|".repeat(cols.len()), "---:|".repeat(others.len()));
    for d in METRICS {
        let cells: Vec<(String, Option<f64>)> = cols.iter().map(|c| cell(c, d.key)).collect();
        let reference_value = cells.last().and_then(|c| c.1);
        let ratios: Vec<String> = cells[..others.len()]
            .iter()
            .map(|(_, v)| match (v, reference_value) {
                (Some(x), Some(y)) if y != 0.0 => format!("{:.2}", x / y),
                _ => "—".into(),
            })
            .collect();
        let values: Vec<&str> = cells.iter().map(|c| c.0.as_str()).collect();
        let better = if d.higher_is_better { "higher (ratio > 1)" } else { "lower (ratio < 1)" };
        let label = d
            .label
            .replace("N tags", &format!("{} tags", opts.tags))
            .replace("N repositories", &format!("{} repositories", opts.repos));
        println!("| {label} | {} | {} | {better} |", values.join(" | "), ratios.join(" | "));
    }
    if opts.rounds > 1 {
        println!("\nPer-round values (in run order):\n");
        println!("| metric | {} |", names.join(" | "));
        println!("|---|{}", "---|".repeat(cols.len()));
        for d in METRICS {
            let per = |c: &Column| -> String {
                if c.spec.is_none() {
                    return "pending".into();
                }
                c.rounds.iter().map(|m| m.get(d.key).map_or("n/a".into(), |v| fmt(*v))).collect::<Vec<_>>().join(" / ")
            };
            let per: Vec<String> = cols.iter().map(per).collect();
            println!("| {} | {} |", d.key, per.join(" | "));
        }
    }
}

fn machine_summary() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, {model}, Linux {}", kernel.trim())
}

/// Filesystem type of the mount holding `path` (longest matching mount point).
fn fs_type(path: &std::path::Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && path.starts_with(f[1])).then(|| (f[1].len(), format!("{} on {}", f[2], f[0])))
        })
        .max_by_key(|(n, _)| *n)
        .map_or_else(|| "unknown filesystem".into(), |(_, t)| t)
}
