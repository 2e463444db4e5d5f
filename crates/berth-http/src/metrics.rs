//! Prometheus metrics at `GET /metrics`, in the text exposition format.
//!
//! Process-wide, like Prometheus client libraries' default registry: one Berth process is
//! one scrape target, and the middleware, upload handlers and the binary's wiring (DB
//! pool gauges) all record into the same place without threading a handle through every
//! layer. Labels are deliberately coarse (an endpoint class, not the repository name),
//! so the number of series stays bounded whatever clients send.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0];

/// Which part of the API a request hit. A fixed set, so it can index arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Base,
    Blob,
    Upload,
    Manifest,
    Tags,
    Referrers,
    Catalog,
    Token,
    Api,
    Other,
}

const CLASSES: [Class; 10] = [
    Class::Base,
    Class::Blob,
    Class::Upload,
    Class::Manifest,
    Class::Tags,
    Class::Referrers,
    Class::Catalog,
    Class::Token,
    Class::Api,
    Class::Other,
];

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Base => "v2_base",
            Class::Blob => "blob",
            Class::Upload => "blob_upload",
            Class::Manifest => "manifest",
            Class::Tags => "tags",
            Class::Referrers => "referrers",
            Class::Catalog => "catalog",
            Class::Token => "token",
            Class::Api => "api",
            Class::Other => "other",
        }
    }

    /// Classifies by path shape only; the OCI router does the real parsing later.
    pub fn of(path: &str) -> Class {
        if path == "/v2" || path == "/v2/" {
            return Class::Base;
        }
        if path == "/v2/_catalog" {
            return Class::Catalog;
        }
        if let Some(rest) = path.strip_prefix("/v2/") {
            // The last matching marker wins: repository names may contain "blobs" etc.
            let markers = [
                ("/blobs/uploads/", Class::Upload),
                ("/blobs/uploads", Class::Upload),
                ("/blobs/", Class::Blob),
                ("/manifests/", Class::Manifest),
                ("/tags/list", Class::Tags),
                ("/referrers/", Class::Referrers),
            ];
            return markers
                .iter()
                .filter_map(|(m, c)| rest.rfind(m).map(|i| (i, m.len(), *c)))
                .max_by_key(|&(i, len, _)| (i, len))
                .map_or(Class::Other, |(_, _, c)| c);
        }
        if path == "/service/token" {
            return Class::Token;
        }
        if path.starts_with("/api/") || path.starts_with("/c/") {
            return Class::Api;
        }
        Class::Other
    }
}

#[derive(Default)]
struct Latency {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// One value a [`GaugeSource`] reports.
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    /// `gauge` or `counter`.
    pub kind: &'static str,
    pub value: f64,
}

/// Extra values the binary contributes (database pool, writer statistics), sampled at
/// scrape time.
pub type GaugeSource = Box<dyn Fn() -> Vec<Sample> + Send + Sync>;

/// Exposition text a subsystem renders itself (labelled families, such as the job
/// service's per-kind queues), appended at scrape time.
pub type TextSource = Box<dyn Fn() -> String + Send + Sync>;

pub struct Metrics {
    /// (class, method, status) → count. Bounded: 10 classes × a few methods × the status
    /// codes Berth answers with.
    requests: Mutex<BTreeMap<(Class, Method, u16), u64>>,
    latency: [Latency; CLASSES.len()],
    bytes_in: [AtomicU64; CLASSES.len()],
    bytes_out: [AtomicU64; CLASSES.len()],
    in_flight: AtomicI64,
    uploads_started: AtomicU64,
    uploads_completed: AtomicU64,
    uploads_cancelled: AtomicU64,
    gauges: Mutex<Vec<GaugeSource>>,
    texts: Mutex<Vec<TextSource>>,
}

pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| Metrics {
        requests: Mutex::new(BTreeMap::new()),
        latency: Default::default(),
        bytes_in: Default::default(),
        bytes_out: Default::default(),
        in_flight: AtomicI64::new(0),
        uploads_started: AtomicU64::new(0),
        uploads_completed: AtomicU64::new(0),
        uploads_cancelled: AtomicU64::new(0),
        gauges: Mutex::new(Vec::new()),
        texts: Mutex::new(Vec::new()),
    })
}

/// How an upload session ended, for the upload counters.
pub enum UploadEnd {
    Completed,
    Cancelled,
}

impl Metrics {
    pub fn add_gauges(&self, source: GaugeSource) {
        self.gauges.lock().unwrap_or_else(|p| p.into_inner()).push(source);
    }

    pub fn add_text(&self, source: TextSource) {
        self.texts.lock().unwrap_or_else(|p| p.into_inner()).push(source);
    }

    pub fn upload_started(&self) {
        self.uploads_started.fetch_add(1, Ordering::Relaxed);
    }

    pub fn upload_ended(&self, how: UploadEnd) {
        match how {
            UploadEnd::Completed => &self.uploads_completed,
            UploadEnd::Cancelled => &self.uploads_cancelled,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, class: Class, method: Method, status: u16, elapsed: std::time::Duration) {
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()).entry((class, method, status)).or_default() += 1;
        let l = &self.latency[class as usize];
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            l.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        l.count.fetch_add(1, Ordering::Relaxed);
        l.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        header(
            &mut out,
            "berth_http_requests_total",
            "HTTP requests answered, by endpoint class, method and status.",
            "counter",
        );
        for ((class, method, status), n) in self.requests.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "berth_http_requests_total{{class=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                class.name(),
                method.as_str()
            );
        }
        header(
            &mut out,
            "berth_http_request_duration_seconds",
            "Time to the response head, by endpoint class.",
            "histogram",
        );
        for class in CLASSES {
            let l = &self.latency[class as usize];
            let count = l.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += l.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "berth_http_request_duration_seconds_bucket{{class=\"{}\",le=\"{b}\"}} {cumulative}",
                    class.name()
                );
            }
            let name = class.name();
            let _ = writeln!(out, "berth_http_request_duration_seconds_bucket{{class=\"{name}\",le=\"+Inf\"}} {count}");
            let sum = l.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "berth_http_request_duration_seconds_sum{{class=\"{name}\"}} {sum}");
            let _ = writeln!(out, "berth_http_request_duration_seconds_count{{class=\"{name}\"}} {count}");
        }
        for (metric, help, values) in [
            ("berth_http_request_bytes_total", "Request body bytes received, by endpoint class.", &self.bytes_in),
            ("berth_http_response_bytes_total", "Response body bytes sent, by endpoint class.", &self.bytes_out),
        ] {
            header(&mut out, metric, help, "counter");
            for class in CLASSES {
                let v = values[class as usize].load(Ordering::Relaxed);
                if v > 0 {
                    let _ = writeln!(out, "{metric}{{class=\"{}\"}} {v}", class.name());
                }
            }
        }
        header(&mut out, "berth_http_requests_in_flight", "Requests being handled now.", "gauge");
        let _ = writeln!(out, "berth_http_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed));
        header(
            &mut out,
            "berth_upload_sessions_total",
            "Blob upload sessions, by how they ended (started counts every one).",
            "counter",
        );
        for (result, v) in [
            ("started", &self.uploads_started),
            ("completed", &self.uploads_completed),
            ("cancelled", &self.uploads_cancelled),
        ] {
            let _ = writeln!(out, "berth_upload_sessions_total{{result=\"{result}\"}} {}", v.load(Ordering::Relaxed));
        }
        let started = self.uploads_started.load(Ordering::Relaxed) as i64;
        let ended =
            (self.uploads_completed.load(Ordering::Relaxed) + self.uploads_cancelled.load(Ordering::Relaxed)) as i64;
        header(
            &mut out,
            "berth_upload_sessions_open",
            "Upload sessions started on this instance and not finished here (sessions continued on another instance end there).",
            "gauge",
        );
        let _ = writeln!(out, "berth_upload_sessions_open {}", (started - ended).max(0));
        for source in self.gauges.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for Sample { name, help, kind, value } in source() {
                header(&mut out, name, help, kind);
                let _ = writeln!(out, "{name} {value}");
            }
        }
        for source in self.texts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push_str(&source());
        }
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub async fn handler() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))],
        global().render(),
    )
        .into_response()
}

/// Counts, times and measures every request. Latency is to the response head; bytes are
/// counted as the bodies stream, so a multi-GB blob is accounted while it flows.
pub async fn track(req: Request, next: Next) -> Response {
    let m = global();
    let class = Class::of(req.uri().path());
    let method = req.method().clone();
    let started = Instant::now();
    m.in_flight.fetch_add(1, Ordering::Relaxed);
    let req = req.map(|b| counted(b, &m.bytes_in[class as usize]));
    let res = next.run(req).await;
    m.in_flight.fetch_sub(1, Ordering::Relaxed);
    m.record(class, method, res.status().as_u16(), started.elapsed());
    res.map(|b| counted(b, &m.bytes_out[class as usize]))
}

/// `body`, adding the length of every data frame to `counter` as it passes.
fn counted(body: Body, counter: &'static AtomicU64) -> Body {
    Body::new(body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_path_shape() {
        assert_eq!(Class::of("/v2/"), Class::Base);
        assert_eq!(Class::of("/v2/_catalog"), Class::Catalog);
        assert_eq!(Class::of("/v2/library/alpine/blobs/sha256:ab"), Class::Blob);
        assert_eq!(Class::of("/v2/library/alpine/blobs/uploads/"), Class::Upload);
        assert_eq!(Class::of("/v2/library/alpine/blobs/uploads/0190-abc"), Class::Upload);
        assert_eq!(Class::of("/v2/a/manifests/blobs/manifests/latest"), Class::Manifest);
        assert_eq!(Class::of("/v2/blobs/tags/list"), Class::Tags);
        assert_eq!(Class::of("/v2/x/referrers/sha256:ab"), Class::Referrers);
        assert_eq!(Class::of("/service/token"), Class::Token);
        assert_eq!(Class::of("/api/v2.0/projects"), Class::Api);
        assert_eq!(Class::of("/favicon.ico"), Class::Other);
    }

    #[test]
    fn render_is_valid_exposition_text() {
        let m = global();
        m.record(Class::Manifest, Method::GET, 200, std::time::Duration::from_millis(3));
        m.upload_started();
        m.add_gauges(Box::new(|| {
            vec![Sample { name: "berth_test_gauge", help: "A gauge for the test.", kind: "gauge", value: 7.0 }]
        }));
        let text = m.render();
        assert!(text.contains("berth_http_requests_total{class=\"manifest\",method=\"GET\",status=\"200\"}"), "{text}");
        assert!(text.contains("berth_http_request_duration_seconds_bucket{class=\"manifest\",le=\"0.005\"}"), "{text}");
        assert!(text.contains("berth_test_gauge 7"), "{text}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            assert!(value.parse::<f64>().is_ok(), "value of {series}: {value:?}");
            assert!(series.starts_with("berth_"), "{line}");
        }
    }
}
