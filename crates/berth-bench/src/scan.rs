//! `berth-bench --scan`: the built-in scanner's benchmark (issue 12). One Berth in Harbor
//! mode; an image of `--scan-image-mib` MiB (uncompressed, in gzip layers) with
//! `--scan-packages` Debian packages, pushed over /v2; `--scan-records` synthetic OSV
//! records generated here (a zip, imported with `berth vulndb import`), of which ten per
//! installed package concern the image (half of them fixed above the installed version);
//! the rest are spread over other package names. Then:
//!
//! - scan time: `POST …/scan` until the overview says Success, polled every 20 ms; the
//!   first scan after the import (cold) and `--rounds` more (warm), median reported;
//! - scan interference: rounds alternating without and with a scan running, each round
//!   pushing a fresh 16 MiB layer + manifest and pulling it back `--scan-io` times; the
//!   median of the per-pair ratio (with / without) is what a scan costs pushes and pulls.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use hyper::{Method, StatusCode};

use crate::auth::{Creds, authorize, repo_scope};
use crate::blob::{Blob, random_bytes};
use crate::http::{Conn, ReqBody};
use crate::server::{Server, Spec};
use crate::workloads::upload_monolithic;

pub struct ScanOpts {
    pub image_mib: usize,
    pub packages: usize,
    pub records: usize,
    pub rounds: usize,
    pub io_per_round: usize,
    pub tmp: PathBuf,
}

const PROJECT: &str = "bench";
const REPO: &str = "bench/scanned";
const IO_REPO: &str = "bench/io";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MIB: usize = 1 << 20;
/// Advisories per installed package.
const PER_PACKAGE: usize = 10;

fn package(i: usize) -> String {
    format!("bench-pkg-{i:05}")
}

/// A dpkg status of `n` installed packages, each with a realistic stanza.
fn dpkg_status(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let p = package(i);
        s.push_str(&format!(
            "Package: {p}\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: {}\n\
             Maintainer: Bench <bench@example.invalid>\nArchitecture: amd64\nSource: {p}\nVersion: 2.{i}.0-1\n\
             Depends: libc6 (>= 2.36)\nDescription: synthetic package {i}\n a package the benchmark installs.\n\n",
            100 + i
        ));
    }
    s
}

/// Text-like content gzip compresses about 3:1, as binaries and libraries do.
fn filler(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&[u8]; 16] = [
        b"the ",
        b"registry ",
        b"layer ",
        b"\x7fELF\x02\x01",
        b"libc.so.6 ",
        b"__gmon_start__ ",
        b"GLIBC_2.34 ",
        b"\x00\x00\x00\x00",
        b"main ",
        b"error: ",
        b"%s: %d\n",
        b"/usr/lib/",
        b"\x48\x89\xe5",
        b"config ",
        b"package ",
        b"\xff\xff",
    ];
    let noise = random_bytes(len / 4 + 8, seed);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        let r = noise[i % noise.len()];
        if r & 0xc0 == 0 {
            out.extend_from_slice(&noise[i % noise.len()..(i % noise.len() + 8).min(noise.len())]);
        } else {
            out.extend_from_slice(WORDS[(r & 15) as usize]);
        }
        i += 1;
    }
    out.truncate(len);
    out
}

fn gzip_tar(files: &[(String, Vec<u8>, u32)]) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data.as_slice())?;
    }
    Ok(b.into_inner()?.finish()?)
}

/// The image's layers: the OS and its package database first, then layers of files
/// (one in ten executable, which the scanner opens to look for build information).
fn image_layers(image_mib: usize, packages: usize) -> Result<Vec<Blob>> {
    let mut layers = vec![gzip_tar(&[
        (
            "etc/os-release".into(),
            b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n".to_vec(),
            0o644,
        ),
        ("var/lib/dpkg/status".into(), dpkg_status(packages).into_bytes(), 0o644),
    ])?];
    let per_layer = 100 * MIB;
    let mut left = image_mib * MIB;
    let mut n = 0u64;
    while left > 0 {
        let size = left.min(per_layer);
        left -= size;
        let mut files = Vec::new();
        let mut in_layer = 0;
        while in_layer < size {
            let len = (size - in_layer).min(MIB + (n as usize % 7) * 256 * 1024);
            let exec = n.is_multiple_of(10);
            let dir = if exec { "usr/bin" } else { "usr/share/bench" };
            files.push((format!("{dir}/file-{n:06}"), filler(len, n + 1), if exec { 0o755 } else { 0o644 }));
            in_layer += len;
            n += 1;
        }
        layers.push(gzip_tar(&files)?);
    }
    Ok(layers.into_iter().map(Blob::small).collect())
}

/// `records` OSV records: ten per installed package (five fixed above the installed
/// version, so they match; five fixed at or below it), the rest on other packages.
fn osv_zip(path: &Path, records: usize, packages: usize) -> Result<usize> {
    let f = std::fs::File::create(path)?;
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut matching = 0;
    for r in 0..records {
        let (name, fixed) = if r < packages * PER_PACKAGE {
            let i = r / PER_PACKAGE;
            let k = r % PER_PACKAGE;
            if k < PER_PACKAGE / 2 {
                matching += 1;
                (package(i), format!("2.{i}.{}-1", k + 1))
            } else {
                (package(i), format!("1.{k}.0-1"))
            }
        } else {
            (package(packages + r % 20_000), "9.0.0-1".to_string())
        };
        let id = format!("DEBIAN-CVE-2099-{r:06}");
        let score =
            ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N"][r % 2];
        let rec = serde_json::json!({
            "id": id, "modified": "2024-05-01T00:00:00Z", "published": "2024-04-01T00:00:00Z",
            "aliases": [format!("CVE-2099-{r:06}")],
            "summary": format!("synthetic advisory {r} on {name}"),
            "details": "Generated by berth-bench for the scan benchmark. ".repeat(4),
            "severity": [{"type": "CVSS_V3", "score": score}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
            "references": [{"type": "ADVISORY", "url": format!("https://security-tracker.debian.org/tracker/CVE-2099-{r:06}")}],
        });
        z.start_file(format!("Debian/{id}.json"), opts)?;
        z.write_all(&serde_json::to_vec(&rec)?)?;
    }
    z.finish()?;
    Ok(matching)
}

fn basic(c: &Creds) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.password)))
}

async fn push_image(conn: &mut Conn, creds: &Creds, repo: &str, tag: &str, layers: &[Blob]) -> Result<()> {
    authorize(Some(creds), conn, &[repo_scope(repo, "pull,push")]).await?;
    let config = Blob::small(
        format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"n":"{tag}"}}"#)
            .into_bytes(),
    );
    upload_monolithic(conn, repo, &config).await?;
    for l in layers {
        upload_monolithic(conn, repo, l).await?;
    }
    let ls: Vec<String> = layers
        .iter()
        .map(|l| format!(r#"{{"mediaType":"{OCI_LAYER}","digest":"{}","size":{}}}"#, l.digest, l.len))
        .collect();
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":{}}},"layers":[{}]}}"#,
        config.digest,
        config.len,
        ls.join(",")
    );
    conn.call(
        Method::PUT,
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("content-type", OCI_MANIFEST)],
        ReqBody::from_bytes(m),
    )
    .await?
    .expect(StatusCode::CREATED, "PUT manifest")?;
    Ok(())
}

async fn pull_blob(conn: &mut Conn, repo: &str, digest: &str) -> Result<u64> {
    let r = conn.call_drain(Method::GET, &format!("/v2/{repo}/blobs/{digest}"), &[], ReqBody::empty()).await?;
    ensure!(r.0 == StatusCode::OK, "GET blob answered {}", r.0);
    Ok(r.1)
}

/// The scan's overview status, or None before there is one.
async fn scan_status(conn: &mut Conn, creds: &Creds) -> Result<Option<String>> {
    let path = "/api/v2.0/projects/bench/repositories/scanned/artifacts/v1?with_scan_overview=true";
    let r = conn.call(Method::GET, path, &[("authorization", &basic(creds))], ReqBody::empty()).await?;
    let r = r.expect(StatusCode::OK, "GET artifact")?;
    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
    let o = &v["scan_overview"]["application/vnd.security.vulnerability.report; version=1.1"];
    Ok(o["scan_status"].as_str().map(str::to_string))
}

async fn start_scan(conn: &mut Conn, creds: &Creds) -> Result<()> {
    let path = "/api/v2.0/projects/bench/repositories/scanned/artifacts/v1/scan";
    conn.call(Method::POST, path, &[("authorization", &basic(creds))], ReqBody::empty())
        .await?
        .expect(StatusCode::ACCEPTED, "POST scan")?;
    Ok(())
}

/// One scan, start to Success: its wall-clock time.
async fn timed_scan(conn: &mut Conn, creds: &Creds) -> Result<Duration> {
    let t = Instant::now();
    start_scan(conn, creds).await?;
    wait_scan(conn, creds, t).await
}

async fn wait_scan(conn: &mut Conn, creds: &Creds, t: Instant) -> Result<Duration> {
    let deadline = t + Duration::from_secs(600);
    loop {
        match scan_status(conn, creds).await?.as_deref() {
            Some("Success") => return Ok(t.elapsed()),
            Some(s @ ("Error" | "Stopped")) => bail!("the scan ended {s}"),
            _ => {}
        }
        ensure!(Instant::now() < deadline, "the scan did not finish in 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// One round of pushes and pulls: `n` × (push a fresh 16 MiB layer and manifest, pull the
/// layer back); its wall-clock time.
async fn io_round(conn: &mut Conn, creds: &Creds, round: usize, n: usize) -> Result<Duration> {
    let t = Instant::now();
    for i in 0..n {
        let layer = Blob::small(random_bytes(16 * MIB, (round * 1000 + i) as u64 + 7));
        let tag = format!("r{round}-{i}");
        push_image(conn, creds, IO_REPO, &tag, std::slice::from_ref(&layer)).await?;
        authorize(Some(creds), conn, &[repo_scope(IO_REPO, "pull")]).await?;
        pull_blob(conn, IO_REPO, &layer.digest).await?;
    }
    Ok(t.elapsed())
}

pub async fn run(spec: Spec, opts: ScanOpts) -> Result<()> {
    let spec = Spec { harbor: true, ..spec };
    let work = opts.tmp.join(format!("berth-bench-scan-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = run_in(&spec, &opts, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

async fn run_in(spec: &Spec, opts: &ScanOpts, work: &Path) -> Result<()> {
    let t = Instant::now();
    let zip = work.join("osv.zip");
    let matching = osv_zip(&zip, opts.records, opts.packages)?;
    eprintln!(
        "generated {} OSV records ({matching} affect the image) in {:.1} s",
        opts.records,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let layers = image_layers(opts.image_mib, opts.packages)?;
    let compressed: u64 = layers.iter().map(|l| l.len).sum();
    eprintln!(
        "generated the image: {} MiB in {} layers ({} MiB compressed) in {:.1} s",
        opts.image_mib,
        layers.len(),
        compressed >> 20,
        t.elapsed().as_secs_f64()
    );

    let server = Server::start(spec, &opts.tmp).await?;
    let creds = server.creds.clone().context("Harbor mode has credentials")?;
    let data = server.data_dir().context("a server this tool started")?;
    let t = Instant::now();
    let out = std::process::Command::new(&spec.program)
        .args(["vulndb", "import", "--data-dir"])
        .arg(&data)
        .arg(&zip)
        .output()?;
    ensure!(out.status.success(), "vulndb import failed: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("imported in {:.1} s: {}", t.elapsed().as_secs_f64(), String::from_utf8_lossy(&out.stdout).trim());

    let mut conn = Conn::new(server.addr);
    creds.create_project(&mut conn, PROJECT).await?;
    let t = Instant::now();
    push_image(&mut conn, &creds, REPO, "v1", &layers).await?;
    eprintln!("pushed the image in {:.1} s", t.elapsed().as_secs_f64());
    drop(layers);

    let cold = timed_scan(&mut conn, &creds).await?;
    eprintln!("scan 1 (cold, first after import): {:.2} s", cold.as_secs_f64());
    let mut warm = Vec::new();
    for i in 0..opts.rounds {
        let d = timed_scan(&mut conn, &creds).await?;
        eprintln!("scan {} (warm): {:.2} s", i + 2, d.as_secs_f64());
        warm.push(d.as_secs_f64());
    }
    {
        // The last scan's own account of where its time went.
        let path = "/api/v2.0/projects/bench/repositories/scanned/artifacts/v1?with_scan_overview=true";
        let r = conn.call(Method::GET, path, &[("authorization", &basic(&creds))], ReqBody::empty()).await?;
        let v: serde_json::Value = serde_json::from_slice(&r.expect(StatusCode::OK, "GET artifact")?.body)?;
        let id = v["scan_overview"]["application/vnd.security.vulnerability.report; version=1.1"]["report_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let path = format!("/api/v2.0/projects/bench/repositories/scanned/artifacts/v1/scan/{id}/log");
        let r = conn.call(Method::GET, &path, &[("authorization", &basic(&creds))], ReqBody::empty()).await?;
        eprintln!("the last scan's log:\n{}", String::from_utf8_lossy(&r.expect(StatusCode::OK, "GET scan log")?.body));
    }
    let report = {
        let path = "/api/v2.0/projects/bench/repositories/scanned/artifacts/v1/additions/vulnerabilities";
        let r = conn.call(Method::GET, path, &[("authorization", &basic(&creds))], ReqBody::empty()).await?;
        let v: serde_json::Value = serde_json::from_slice(&r.expect(StatusCode::OK, "GET report")?.body)?;
        v["application/vnd.security.vulnerability.report; version=1.1"]["vulnerabilities"]
            .as_array()
            .map_or(0, Vec::len)
    };
    ensure!(report == matching, "the report lists {report} vulnerabilities, the data has {matching} that match");

    // Interference: pairs of rounds, without then with a scan running (order alternating).
    let mut ratios = Vec::new();
    let (mut without, mut with) = (Vec::new(), Vec::new());
    io_round(&mut conn, &creds, 999, 1).await?; // warm-up
    for pair in 0..opts.rounds {
        let mut times = [Duration::ZERO; 2];
        let order = if pair.is_multiple_of(2) { [false, true] } else { [true, false] };
        for (k, scanning) in order.into_iter().enumerate() {
            let round = pair * 2 + k;
            if scanning {
                // The scan runs on its own connection for the whole round; if it ends
                // first, another starts.
                let mut sc = Conn::new(server.addr);
                start_scan(&mut sc, &creds).await?;
                let io = async {
                    let mut c = Conn::new(server.addr);
                    io_round(&mut c, &creds, round, opts.io_per_round).await
                };
                let keep_scanning = async {
                    let mut scans = 1;
                    loop {
                        if let Some("Success") = scan_status(&mut sc, &creds).await?.as_deref() {
                            start_scan(&mut sc, &creds).await?;
                            scans += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if scans > 1000 {
                            return Ok::<_, anyhow::Error>(());
                        }
                    }
                };
                let d = tokio::select! {
                    d = io => d?,
                    r = keep_scanning => { r?; bail!("scans ended before the round") }
                };
                times[1] = d;
                // Let the last scan finish before the next round.
                wait_scan(&mut sc, &creds, Instant::now()).await?;
            } else {
                times[0] = io_round(&mut conn, &creds, round, opts.io_per_round).await?;
            }
        }
        let ratio = times[1].as_secs_f64() / times[0].as_secs_f64();
        eprintln!(
            "pushes/pulls pair {}: without a scan {:.2} s, with {:.2} s, ratio {ratio:.3}",
            pair + 1,
            times[0].as_secs_f64(),
            times[1].as_secs_f64()
        );
        without.push(times[0].as_secs_f64());
        with.push(times[1].as_secs_f64());
        ratios.push(ratio);
    }

    println!("| Scan benchmark (issue 12) | figure |");
    println!("| --- | --- |");
    println!(
        "| image | {} MiB uncompressed, {} MiB in {} gzip layers, {} Debian packages |",
        opts.image_mib,
        compressed >> 20,
        opts.image_mib.div_ceil(100) + 1,
        opts.packages
    );
    println!("| vulnerability data | {} OSV records, {matching} of them match the image |", opts.records);
    println!("| scan, cold (first after import) | {:.2} s |", cold.as_secs_f64());
    println!("| scan, warm, median of {} | {:.2} s (goal < 5 s) |", warm.len(), median(warm.clone()));
    println!("| scans, warm, all | {} |", warm.iter().map(|w| format!("{w:.2}")).collect::<Vec<_>>().join(", "));
    println!(
        "| {} × (push 16 MiB layer + manifest, pull it), median without a scan | {:.2} s |",
        opts.io_per_round,
        median(without)
    );
    println!("| same, median with a scan running | {:.2} s |", median(with));
    println!(
        "| ratio with/without, median of {} pairs | {:.3} (goal ≤ 1.10); all: {} |",
        ratios.len(),
        median(ratios.clone()),
        ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_data_is_what_the_scanner_reads() {
        let status = dpkg_status(3);
        assert_eq!(status.matches("Package: bench-pkg-").count(), 3);
        assert!(status.contains("Version: 2.2.0-1"));
        let dir = std::env::temp_dir().join(format!("berth-bench-scan-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let matching = osv_zip(&dir.join("osv.zip"), 100, 3).unwrap();
        assert_eq!(matching, 15);
        let z = zip::ZipArchive::new(std::fs::File::open(dir.join("osv.zip")).unwrap()).unwrap();
        assert_eq!(z.len(), 100);
        std::fs::remove_dir_all(&dir).unwrap();
        let f = filler(100_000, 1);
        assert_eq!(f.len(), 100_000);
    }
}
