//! Berth's scanning service, free of HTTP serving: what the API, scan on push and the
//! job service call. [`scan`]: starting scans as jobs, reading a report's state, the
//! `prevent_vul` gate, scan webhook events; [`scanners`]: scanner registrations and the
//! client of Harbor's Pluggable Scanner API v1.1; [`adapter`]: scans other registries
//! ask of Berth's own adapter API; [`scan_all`]: the `SCAN_ALL` job; [`security`]: the
//! security hub's walk of the catalog; [`cve_export`]: the `SCAN_DATA_EXPORT` job;
//! [`job`]: the scan jobs themselves (`IMAGE_SCAN`, `SCANNER_ADAPTER_SCAN`), with
//! [`external`] driving an external adapter. The scanner itself (layers, packages,
//! matching) is `berth-scan`; the HTTP handlers are berth-http's.

pub mod adapter;
pub mod cve_export;
pub mod external;
pub mod job;
pub mod scan;
pub mod scan_all;
pub mod scanners;
pub mod security;

/// Harbor's `strfmt.DateTime`: RFC 3339 in UTC with milliseconds.
pub fn harbor_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Days-from-civil, inverted (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z", secs / 3600, secs % 3600 / 60, secs % 60)
}
