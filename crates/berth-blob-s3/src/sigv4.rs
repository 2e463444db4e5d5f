//! AWS Signature Version 4 for S3: the `Authorization` header and query-string
//! presigning, plus the few date conversions they and S3's XML need.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest as _, Sha256};

pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub(crate) const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What a signature is made with (borrowed from the current credentials).
pub(crate) struct Credentials<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    /// Temporary credentials' session token: a signed `x-amz-security-token`.
    pub session_token: Option<&'a str>,
    pub region: &'a str,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Percent-encodes everything but RFC 3986's unreserved characters (and `/` when
/// `keep_slash`), as SigV4 requires for paths and query parameters.
pub(crate) fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` in UTC.
pub(crate) fn amz_dates(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let date = format!("{y:04}{m:02}{d:02}");
    let stamp = format!("{date}T{:02}{:02}{:02}Z", rem / 3600, rem / 60 % 60, rem % 60);
    (date, stamp)
}

/// Howard Hinnant's days-since-epoch to civil date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses S3's `LastModified` (`2024-05-01T12:34:56.000Z`, ISO 8601 in UTC).
pub(crate) fn parse_iso8601(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + se);
    let mut nanos = 0u32;
    if let Some(frac) = s[19..].strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).take(9).collect();
        if !digits.is_empty() {
            nanos = format!("{digits:0<9}").parse().ok()?;
        }
    }
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Canonical query string: parameters sorted, names and values encoded.
fn canonical_query(query: &[(String, String)]) -> String {
    let mut q: Vec<(String, String)> =
        query.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
    q.sort();
    q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn scope(date: &str, region: &str) -> String {
    format!("{date}/{region}/s3/aws4_request")
}

fn signature(creds: &Credentials<'_>, date: &str, stamp: &str, canonical_request: &str) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{}\n{}",
        scope(date, creds.region),
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac(format!("AWS4{}", creds.secret_key).as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, creds.region.as_bytes());
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// The `Authorization` header for a request. `path` is the already-encoded path;
/// `headers` are every signed header (lowercase names), including `host`,
/// `x-amz-date` and `x-amz-content-sha256`.
pub(crate) fn authorization(
    creds: &Credentials<'_>,
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(&str, String)],
    payload_hash: &str,
    (date, stamp): (&str, &str),
) -> String {
    let mut hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.trim())).collect();
    hs.sort();
    let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = hs.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(";");
    let canonical_request =
        format!("{method}\n{path}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}", canonical_query(query));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{},SignedHeaders={signed_headers},Signature={}",
        creds.access_key,
        scope(date, creds.region),
        signature(creds, date, stamp, &canonical_request)
    )
}

/// The query string (without `?`) of a presigned GET: only `host` is signed, the
/// payload is unsigned, the URL is valid for `expires_secs` from `now`.
pub(crate) fn presign_query(
    creds: &Credentials<'_>,
    host: &str,
    path: &str,
    expires_secs: u64,
    now: SystemTime,
) -> String {
    let (date, stamp) = amz_dates(now);
    let mut query = vec![
        ("X-Amz-Algorithm".to_string(), "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential".to_string(), format!("{}/{}", creds.access_key, scope(&date, creds.region))),
        ("X-Amz-Date".to_string(), stamp.clone()),
        ("X-Amz-Expires".to_string(), expires_secs.to_string()),
        ("X-Amz-SignedHeaders".to_string(), "host".to_string()),
    ];
    // S3 signs the session token as part of the query.
    if let Some(t) = creds.session_token {
        query.push(("X-Amz-Security-Token".to_string(), t.to_string()));
    }
    let canonical_request =
        format!("GET\n{path}\n{}\nhost:{host}\n\nhost\n{UNSIGNED_PAYLOAD}", canonical_query(&query));
    format!("{}&X-Amz-Signature={}", canonical_query(&query), signature(creds, &date, &stamp, &canonical_request))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_creds() -> Credentials<'static> {
        // The example credentials of AWS's SigV4 documentation for S3.
        Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            session_token: None,
            region: "us-east-1",
        }
    }

    fn example_time() -> SystemTime {
        parse_iso8601("2013-05-24T00:00:00Z").unwrap()
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_iso8601("2013-05-24T00:00:00Z").unwrap();
        assert_eq!(amz_dates(t), ("20130524".into(), "20130524T000000Z".into()));
        let t = parse_iso8601("2024-02-29T23:59:58.250Z").unwrap();
        assert_eq!(amz_dates(t).1, "20240229T235958Z");
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().subsec_millis(), 250);
        assert_eq!(parse_iso8601("1970-01-01T00:00:00.000Z"), Some(UNIX_EPOCH));
        assert_eq!(parse_iso8601("garbage"), None);
    }

    #[test]
    fn authorization_matches_aws_example_get_object() {
        // "Example: GET Object" from the S3 SigV4 documentation (header-based auth).
        let (date, stamp) = amz_dates(example_time());
        let auth = authorization(
            &example_creds(),
            "GET",
            "/test.txt",
            &[],
            &[
                ("host", "examplebucket.s3.amazonaws.com".into()),
                ("range", "bytes=0-9".into()),
                ("x-amz-content-sha256", EMPTY_SHA256.into()),
                ("x-amz-date", stamp.clone()),
            ],
            EMPTY_SHA256,
            (&date, &stamp),
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn authorization_matches_aws_example_list_objects() {
        // "Example: GET Bucket (List Objects)" from the same page: query parameters.
        let (date, stamp) = amz_dates(example_time());
        let auth = authorization(
            &example_creds(),
            "GET",
            "/",
            &[("max-keys".into(), "2".into()), ("prefix".into(), "J".into())],
            &[
                ("host", "examplebucket.s3.amazonaws.com".into()),
                ("x-amz-content-sha256", EMPTY_SHA256.into()),
                ("x-amz-date", stamp.clone()),
            ],
            EMPTY_SHA256,
            (&date, &stamp),
        );
        assert!(auth.ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"), "{auth}");
    }

    #[test]
    fn presign_matches_aws_example() {
        // "Example: presigned URL" from the S3 query-string authentication documentation.
        let q = presign_query(&example_creds(), "examplebucket.s3.amazonaws.com", "/test.txt", 86_400, example_time());
        assert!(q.contains("X-Amz-Expires=86400"), "{q}");
        assert!(q.ends_with("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"), "{q}");
    }

    #[test]
    fn encoding_keeps_unreserved_only() {
        assert_eq!(uri_encode("a/b c~d_e.f-g", true), "a/b%20c~d_e.f-g");
        assert_eq!(uri_encode("a/b+=", false), "a%2Fb%2B%3D");
    }
}
