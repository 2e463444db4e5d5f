//! The S3 credential chain and server-side encryption, each source played by a local
//! responder on 127.0.0.1 (which also plays S3 and records what was signed), plus the
//! data path against Garage with credentials from the chain.

#[allow(dead_code)]
mod support;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_blob_s3::{AwsEnv, S3BlobStore, S3Options, Sse, credential_source};
use berth_core::blobstore::BlobStore;
use berth_core::{Digest, RepoName};

use support::responder::{EMPTY_LISTING, Req, Resp, Responder};

/// ISO 8601 in UTC, as STS, ECS and IMDS write `Expiration`.
fn iso8601(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

fn json_creds(key: &str, expires_in: Duration) -> String {
    format!(
        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"secret-{key}","Token":"token-{key}","Expiration":"{}"}}"#,
        iso8601(SystemTime::now() + expires_in)
    )
}

/// The fake bucket `b`: listing, PUT and HEAD succeed.
fn s3(r: &Req) -> Option<Resp> {
    if !r.path().starts_with("/b") {
        return None;
    }
    Some(match r.method.as_str() {
        "GET" => Resp::ok(EMPTY_LISTING),
        _ => Resp::ok("").header("etag", "\"x\""),
    })
}

fn opts(url: &str, env: AwsEnv) -> S3Options {
    S3Options {
        endpoint: url.to_string(),
        region: "us-east-1".into(),
        bucket: "b".into(),
        path_style: true,
        env,
        timeout: Duration::from_secs(2),
        ..S3Options::default()
    }
}

/// The S3 requests (to the bucket) the responder saw.
fn bucket_requests(r: &Responder) -> Vec<Req> {
    r.requests_to("/b")
}

fn env(pairs: &[(&str, &str)]) -> AwsEnv {
    AwsEnv::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[tokio::test]
async fn static_configuration_keys_come_first() {
    let r = Responder::start(|q| s3(q).unwrap_or(Resp::status(404, ""))).await;
    let e = env(&[("AWS_ACCESS_KEY_ID", "FROMENV"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let store =
        S3BlobStore::open(S3Options { access_key: "CONFIGKEY".into(), secret_key: "s".into(), ..opts(&r.url, e) })
            .await
            .unwrap();
    store.mark_owned().await.unwrap();
    assert!(store.credential_source().contains("storage.s3_access_key"), "{}", store.credential_source());
    for q in bucket_requests(&r) {
        assert_eq!(q.signed_by().as_deref(), Some("CONFIGKEY"));
        assert_eq!(q.header("x-amz-security-token"), None);
    }
}

#[tokio::test]
async fn environment_keys_and_session_token_are_used() {
    let r = Responder::start(|q| s3(q).unwrap_or(Resp::status(404, ""))).await;
    let e = env(&[("AWS_ACCESS_KEY_ID", "ASIAENV"), ("AWS_SECRET_ACCESS_KEY", "s"), ("AWS_SESSION_TOKEN", "envtoken")]);
    let store = S3BlobStore::open(opts(&r.url, e)).await.unwrap();
    assert!(store.credential_source().contains("environment"), "{}", store.credential_source());
    store.mark_owned().await.unwrap();
    let reqs = bucket_requests(&r);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    for q in &reqs {
        assert_eq!(q.signed_by().as_deref(), Some("ASIAENV"));
        assert_eq!(q.header("x-amz-security-token"), Some("envtoken"));
        // The token is signed, as S3 requires.
        assert!(q.header("authorization").unwrap().contains("x-amz-security-token"), "{q:?}");
    }
    // Presigned URLs carry the token too.
    let url = store.presigned_get(&Digest::sha256(b"x"), Duration::from_secs(60)).unwrap();
    assert!(url.contains("X-Amz-Security-Token=envtoken") && url.contains("X-Amz-Credential=ASIAENV"), "{url}");
}

#[tokio::test]
async fn shared_profile_files_are_read() {
    let r = Responder::start(|q| s3(q).unwrap_or(Resp::status(404, ""))).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    let config = dir.path().join("config");
    std::fs::write(&creds, "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = s\n\n[dev]\naws_access_key_id = DEVKEY\naws_secret_access_key = s\naws_session_token = devtoken\n").unwrap();
    std::fs::write(
        &config,
        "[default]\nregion = eu-west-1\n[profile ops]\naws_access_key_id = OPSKEY\naws_secret_access_key = s\n",
    )
    .unwrap();
    let (c, f) = (creds.to_str().unwrap(), config.to_str().unwrap());

    for (profile, key) in [(None, "DEFAULTKEY"), (Some("dev"), "DEVKEY"), (Some("ops"), "OPSKEY")] {
        let mut pairs = vec![("AWS_SHARED_CREDENTIALS_FILE", c), ("AWS_CONFIG_FILE", f)];
        if let Some(p) = profile {
            pairs.push(("AWS_PROFILE", p));
        }
        let store = S3BlobStore::open(opts(&r.url, env(&pairs))).await.unwrap();
        assert!(store.credential_source().contains("profile"), "{}", store.credential_source());
        let last = bucket_requests(&r).pop().unwrap();
        assert_eq!(last.signed_by().as_deref(), Some(key), "profile {profile:?}");
        assert_eq!(last.header("x-amz-security-token"), (profile == Some("dev")).then_some("devtoken"));
    }

    // ~/.aws under HOME is the default place.
    std::fs::create_dir(dir.path().join(".aws")).unwrap();
    std::fs::copy(&creds, dir.path().join(".aws/credentials")).unwrap();
    let home = env(&[("HOME", dir.path().to_str().unwrap()), ("AWS_PROFILE", "dev")]);
    let store = S3BlobStore::open(opts(&r.url, home)).await.unwrap();
    assert_eq!(bucket_requests(&r).pop().unwrap().signed_by().as_deref(), Some("DEVKEY"));
    drop(store);

    // A profile that is not there is named, with the files looked at.
    let e = env(&[("AWS_SHARED_CREDENTIALS_FILE", c), ("AWS_CONFIG_FILE", f), ("AWS_PROFILE", "nope")]);
    let err = S3BlobStore::open(opts(&r.url, e)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("AWS_PROFILE: profile \"nope\"") && err.to_string().contains(c), "{err}");
    // An explicitly named file that does not exist is an error, not a skip.
    let e = env(&[("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")]);
    let err = S3BlobStore::open(opts(&r.url, e)).await.unwrap_err();
    assert!(err.to_string().contains("AWS_SHARED_CREDENTIALS_FILE: cannot read /nonexistent/credentials"), "{err}");
    // What Berth cannot do is said, not silently skipped.
    std::fs::write(&config, "[profile chained]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n").unwrap();
    let e = env(&[("AWS_SHARED_CREDENTIALS_FILE", c), ("AWS_CONFIG_FILE", f), ("AWS_PROFILE", "chained")]);
    let err = S3BlobStore::open(opts(&r.url, e)).await.unwrap_err();
    assert!(err.to_string().contains("source_profile, which Berth does not support"), "{err}");
}

fn sts_answer(key: &str, expires_in: Duration) -> String {
    format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>system:serviceaccount:x:y</SubjectFromWebIdentityToken>\
         <Credentials><SessionToken>token-{key}</SessionToken><SecretAccessKey>secret-{key}</SecretAccessKey>\
         <Expiration>{}</Expiration><AccessKeyId>{key}</AccessKeyId></Credentials>\
         </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        iso8601(SystemTime::now() + expires_in)
    )
}

#[tokio::test]
async fn web_identity_assumes_the_role_with_sts() {
    let r = Responder::start(|q| {
        if let Some(a) = s3(q) {
            return a;
        }
        if q.method == "POST" && q.path() == "/sts/" {
            if !q.body.contains("WebIdentityToken=eyJ.pod-token") {
                return Resp::status(400, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad token</Message></Error></ErrorResponse>");
            }
            return Resp::ok(sts_answer("ASIASTS", Duration::from_secs(3600)));
        }
        Resp::status(404, "")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJ.pod-token\n").unwrap();
    let sts = format!("{}/sts", r.url);
    let e = env(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/berth"),
        ("AWS_ROLE_SESSION_NAME", "berth-test"),
        ("AWS_ENDPOINT_URL_STS", &sts),
    ]);
    let store = S3BlobStore::open(opts(&r.url, e.clone())).await.unwrap();
    assert!(store.credential_source().contains("web identity"), "{}", store.credential_source());
    let calls = r.requests_to("/sts");
    assert_eq!(calls.len(), 1);
    let body = &calls[0].body;
    assert!(body.contains("Action=AssumeRoleWithWebIdentity") && body.contains("Version=2011-06-15"), "{body}");
    assert!(body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fberth"), "{body}");
    assert!(body.contains("RoleSessionName=berth-test"), "{body}");
    let q = bucket_requests(&r).pop().unwrap();
    assert_eq!(q.signed_by().as_deref(), Some("ASIASTS"));
    assert_eq!(q.header("x-amz-security-token"), Some("token-ASIASTS"));

    // STS refusing the token: its code and message are in the error.
    std::fs::write(&token, "expired").unwrap();
    let err = S3BlobStore::open(opts(&r.url, e)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    assert!(
        err.to_string().contains("InvalidIdentityToken: bad token") && err.to_string().contains("web identity"),
        "{err}"
    );

    // Half of the pair is named.
    let err = S3BlobStore::open(opts(&r.url, env(&[("AWS_ROLE_ARN", "arn:x")]))).await.unwrap_err();
    assert!(err.to_string().contains("AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not"), "{err}");

    // The same through a profile's role_arn + web_identity_token_file.
    let config = dir.path().join("config");
    std::fs::write(&token, "eyJ.pod-token").unwrap();
    std::fs::write(
        &config,
        format!("[profile irsa]\nrole_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = {}\n", token.display()),
    )
    .unwrap();
    let e = env(&[
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent-but-ignored"),
        ("AWS_PROFILE", "irsa"),
        ("AWS_ENDPOINT_URL_STS", &sts),
    ]);
    // An explicitly named missing credentials file is an error…
    assert!(S3BlobStore::open(opts(&r.url, e)).await.is_err());
    let e =
        env(&[("AWS_CONFIG_FILE", config.to_str().unwrap()), ("AWS_PROFILE", "irsa"), ("AWS_ENDPOINT_URL_STS", &sts)]);
    // …without it, HOME is unset here, so only the config file is read.
    let store = S3BlobStore::open(opts(&r.url, e)).await.unwrap();
    assert!(store.credential_source().contains("profile \"irsa\""), "{}", store.credential_source());
    assert_eq!(bucket_requests(&r).pop().unwrap().signed_by().as_deref(), Some("ASIASTS"));
}

#[tokio::test]
async fn container_credentials_send_the_authorization_token() {
    let r = Responder::start(|q| {
        if let Some(a) = s3(q) {
            return a;
        }
        match (q.path(), q.header("authorization")) {
            ("/v2/credentials/abc", Some("Bearer pod-identity")) => {
                Resp::ok(json_creds("ASIAPOD", Duration::from_secs(3600)))
            }
            ("/v2/credentials/abc", _) => Resp::status(401, "{\"Code\":\"Unauthorized\"}"),
            _ => Resp::status(404, ""),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, "Bearer pod-identity\n").unwrap();
    let full = format!("{}/v2/credentials/abc", r.url);
    let e = env(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file.to_str().unwrap()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored: the file wins"),
    ]);
    let store = S3BlobStore::open(opts(&r.url, e)).await.unwrap();
    assert!(store.credential_source().contains("container credentials endpoint"), "{}", store.credential_source());
    let q = bucket_requests(&r).pop().unwrap();
    assert_eq!(q.signed_by().as_deref(), Some("ASIAPOD"));
    assert_eq!(q.header("x-amz-security-token"), Some("token-ASIAPOD"));

    // The token from the variable when there is no file.
    let e = env(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer pod-identity"),
    ]);
    S3BlobStore::open(opts(&r.url, e)).await.unwrap();
    // No token: the endpoint's refusal is in the error.
    let err = S3BlobStore::open(opts(&r.url, env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full)]))).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 401") && err.to_string().contains(&full), "{err}");

    // Plain HTTP only to loopback or the ECS/EKS agents.
    let bad = env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds")]);
    let err = S3BlobStore::open(opts(&r.url, bad)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"), "{err}");
    // A relative URI goes to the ECS agent's address.
    let rel = env(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x")]);
    let src = credential_source(&opts(&r.url, rel)).unwrap();
    assert_eq!(src, "container credentials endpoint http://169.254.170.2/v2/credentials/x");
}

#[tokio::test]
async fn instance_metadata_uses_an_imdsv2_session() {
    let r = Responder::start(|q| {
        if let Some(a) = s3(q) {
            return a;
        }
        let token_ok = q.header("x-aws-ec2-metadata-token") == Some("imds-session");
        match (q.method.as_str(), q.path()) {
            ("PUT", "/latest/api/token") if q.header("x-aws-ec2-metadata-token-ttl-seconds").is_some() => {
                Resp::ok("imds-session")
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") if token_ok => Resp::ok("berth-node-role\n"),
            ("GET", "/latest/meta-data/iam/security-credentials/berth-node-role") if token_ok => {
                Resp::ok(json_creds("ASIAEC2", Duration::from_secs(6 * 3600)))
            }
            // IMDSv1-style requests (no session token) are refused, as with IMDSv2 required.
            ("GET", _) => Resp::status(401, ""),
            _ => Resp::status(404, ""),
        }
    })
    .await;
    let e = env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &r.url)]);
    let store = S3BlobStore::open(opts(&r.url, e)).await.unwrap();
    assert!(store.credential_source().contains("IMDSv2"), "{}", store.credential_source());
    let q = bucket_requests(&r).pop().unwrap();
    assert_eq!(q.signed_by().as_deref(), Some("ASIAEC2"));
    assert_eq!(q.header("x-amz-security-token"), Some("token-ASIAEC2"));
    let imds: Vec<_> = r.requests_to("/latest").iter().map(|q| format!("{} {}", q.method, q.path())).collect();
    assert_eq!(
        imds,
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/berth-node-role"
        ]
    );
}

#[tokio::test]
async fn nothing_configured_names_every_source() {
    let e = env(&[("AWS_EC2_METADATA_DISABLED", "true")]);
    let err = S3BlobStore::open(opts("http://127.0.0.1:9", e)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let m = err.to_string();
    for s in [
        "storage.s3_access_key",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_EC2_METADATA_DISABLED",
    ] {
        assert!(m.contains(s), "{m}");
    }
    // Half a pair, in the configuration or the environment, is named.
    let err = S3BlobStore::open(S3Options { access_key: "AK".into(), ..opts("http://127.0.0.1:9", AwsEnv::default()) })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("storage.s3_secret_key: required when storage.s3_access_key is set"), "{err}");
    let err = S3BlobStore::open(opts("http://127.0.0.1:9", env(&[("AWS_ACCESS_KEY_ID", "AK")]))).await.unwrap_err();
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"), "{err}");
}

#[tokio::test]
async fn an_unreachable_or_silent_source_fails_within_the_deadline() {
    // Nothing listens: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = env(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &format!("http://127.0.0.1:{port}"))]);
    let t = Instant::now();
    let err = S3BlobStore::open(opts("http://127.0.0.1:9", e)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("instance metadata service (IMDSv2)"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // Accepts and never answers: the fetch's deadline (the storage timeout, 1 s here) ends it.
    let r = Responder::start_async(|_| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Resp::ok("")
        })
    })
    .await;
    let e = env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &format!("{}/creds", r.url))]);
    let t = Instant::now();
    let err = S3BlobStore::open(S3Options { timeout: Duration::from_secs(1), ..opts("http://127.0.0.1:9", e) })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("container credentials endpoint"), "{err}");
    assert!(err.to_string().contains("no answer within 1s"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn temporary_credentials_are_refreshed_before_they_expire() {
    // Each fetch hands out new keys valid for 6 s; Berth refreshes halfway (3 s).
    let n = Arc::new(AtomicU32::new(0));
    let fail = Arc::new(AtomicU32::new(0));
    let (n2, fail2) = (n.clone(), fail.clone());
    let r = Responder::start(move |q| {
        if let Some(a) = s3(q) {
            return a;
        }
        if fail2.load(Ordering::SeqCst) == 1 {
            return Resp::status(500, "{\"Code\":\"InternalError\"}");
        }
        let i = n2.fetch_add(1, Ordering::SeqCst) + 1;
        Resp::ok(json_creds(&format!("ASIA{i}"), Duration::from_secs(6)))
    })
    .await;
    let e = env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &format!("{}/creds", r.url))]);
    let store = S3BlobStore::open(opts(&r.url, e)).await.unwrap();
    store.mark_owned().await.unwrap();
    assert_eq!(bucket_requests(&r).pop().unwrap().signed_by().as_deref(), Some("ASIA1"));
    assert_eq!(store.credential_fetches(), 1);

    // After the refresh point, new keys, fetched by the background refresher before the
    // old ones expired.
    tokio::time::sleep(Duration::from_millis(3600)).await;
    assert_eq!(n.load(Ordering::SeqCst), 2, "refreshed once, in the background");
    store.mark_owned().await.unwrap();
    assert_eq!(bucket_requests(&r).pop().unwrap().signed_by().as_deref(), Some("ASIA2"));
    let url = store.presigned_get(&Digest::sha256(b"x"), Duration::from_secs(3600)).unwrap();
    assert!(url.contains("X-Amz-Credential=ASIA2"), "{url}");
    // A presigned URL never outlives its credentials.
    let expires: u64 = url.split("X-Amz-Expires=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap();
    assert!(expires <= 6, "{url}");

    // The source fails from now on: the current keys serve until they expire…
    fail.store(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(3300)).await;
    store.mark_owned().await.unwrap();
    assert_eq!(bucket_requests(&r).pop().unwrap().signed_by().as_deref(), Some("ASIA2"));
    // …then requests fail with an error naming the source, and presigning stops.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let err = store.mark_owned().await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.to_string().contains("container credentials endpoint") && err.to_string().contains("HTTP 500"),
        "{err}"
    );
    assert_eq!(store.presigned_get(&Digest::sha256(b"x"), Duration::from_secs(60)), None);

    // The source recovers: the next request fetches and goes through.
    fail.store(0, Ordering::SeqCst);
    store.mark_owned().await.unwrap();
    assert_eq!(bucket_requests(&r).pop().unwrap().signed_by().as_deref(), Some("ASIA3"));
}

#[tokio::test]
async fn server_side_encryption_headers_go_on_every_write() {
    let r = Responder::start(|q| s3(q).unwrap_or(Resp::status(404, ""))).await;
    let base = S3Options { access_key: "AK".into(), secret_key: "s".into(), ..opts(&r.url, AwsEnv::default()) };
    let cases = [
        (Sse::None, None, None),
        (Sse::Aes256, Some("AES256"), None),
        (Sse::Kms { key_id: None }, Some("aws:kms"), None),
        (Sse::Kms { key_id: Some("alias/registry".into()) }, Some("aws:kms"), Some("alias/registry")),
    ];
    for (sse, alg, key) in cases {
        let store = S3BlobStore::open(S3Options { sse: sse.clone(), ..base.clone() }).await.unwrap();
        store.mark_owned().await.unwrap();
        let put = bucket_requests(&r).into_iter().rfind(|q| q.method == "PUT").unwrap();
        assert_eq!(put.header("x-amz-server-side-encryption"), alg, "{sse:?}");
        assert_eq!(put.header("x-amz-server-side-encryption-aws-kms-key-id"), key, "{sse:?}");
        if alg.is_some() {
            // Signed, so a proxy cannot strip it unnoticed.
            assert!(put.header("authorization").unwrap().contains("x-amz-server-side-encryption"), "{put:?}");
        }
    }
}

#[tokio::test]
async fn garage_data_path_with_credentials_from_the_chain() {
    let g = garage_or_skip!();
    let bucket = g.bucket("chain");
    let base = g.options(&bucket);
    // Environment keys, no configured ones.
    let e = env(&[("AWS_ACCESS_KEY_ID", &g.access_key), ("AWS_SECRET_ACCESS_KEY", &g.secret_key)]);
    let store =
        S3BlobStore::open(S3Options { access_key: String::new(), secret_key: String::new(), env: e, ..base.clone() })
            .await
            .unwrap();
    round_trip(&store).await;

    // A container endpoint handing out Garage's keys (Garage has no session tokens, so none).
    let (ak, sk) = (g.access_key.clone(), g.secret_key.clone());
    let r = Responder::start(move |_| {
        Resp::ok(format!(
            r#"{{"AccessKeyId":"{ak}","SecretAccessKey":"{sk}","Expiration":"{}"}}"#,
            iso8601(SystemTime::now() + Duration::from_secs(3600))
        ))
    })
    .await;
    let e = env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &format!("{}/creds", r.url))]);
    let store = S3BlobStore::open(S3Options { access_key: String::new(), secret_key: String::new(), env: e, ..base })
        .await
        .unwrap();
    round_trip(&store).await;
}

async fn round_trip(store: &S3BlobStore) {
    let repo: RepoName = "chain/app".parse().unwrap();
    let id = "0f0e0d0c-0000-4000-8000-0000000000c1";
    let data = support::bytes(100_000, 7);
    let p = store
        .write_part(
            &repo,
            id,
            berth_core::Hasher::new(berth_core::Algorithm::Sha256),
            support::chunked(&data, 4096),
            None,
        )
        .await
        .unwrap();
    let digest = p.hasher.finish();
    store.commit(&repo, id, &[p.name], &digest).await.unwrap();
    assert_eq!(support::read_all(store.open(&digest, 0, data.len() as u64).await.unwrap()).await, data);
    store.delete(&digest).await.unwrap();
}
