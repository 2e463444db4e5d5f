// figment::Jail closures must return figment's own (large) error type.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Jail;

fn load(jail_file: Option<&str>, overrides: &Overrides) -> Result<Config, ConfigError> {
    Config::load_from(jail_file.map(Path::new), overrides, Env::prefixed(ENV_PREFIX))
}

#[test]
fn defaults_are_the_embedded_registry() {
    Jail::expect_with(|_| {
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!(c.http.listen, "127.0.0.1:8080");
        assert_eq!(c.database_kind().unwrap(), DatabaseKind::Sqlite(PathBuf::from("./data/berth.db")));
        assert_eq!(c.storage_root(), PathBuf::from("./data/storage"));
        Ok(())
    });
}

#[test]
fn file_then_env_then_flags() {
    Jail::expect_with(|j| {
        j.create_file("b.toml", "data_dir = \"/srv/b\"\n[http]\nlisten = \"127.0.0.1:1\"\n[log]\nlevel = \"debug\"\n")?;
        j.set_env("BERTH_HTTP_LISTEN", "127.0.0.1:2");
        j.set_env("BERTH_DATABASE_URL", "sqlite:/tmp/x.db");
        j.set_env("BERTH_LOG__FORMAT", "json");
        let c = load(Some("b.toml"), &Overrides::default()).unwrap();
        assert_eq!(c.http.listen, "127.0.0.1:2");
        assert_eq!(c.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.log.format, "json");
        assert_eq!(c.database_kind().unwrap(), DatabaseKind::Sqlite(PathBuf::from("/tmp/x.db")));
        let o = Overrides { listen: Some("127.0.0.1:3".into()), data_dir: Some("/d".into()) };
        let c = load(Some("b.toml"), &o).unwrap();
        assert_eq!(c.http.listen, "127.0.0.1:3");
        assert_eq!(c.data_dir, PathBuf::from("/d"));
        Ok(())
    });
}

#[test]
fn every_problem_reported_at_once_naming_keys() {
    Jail::expect_with(|j| {
        j.create_file("file", "x")?;
        std::fs::create_dir("adir").unwrap();
        j.set_env("BERTH_HTTP_LISTEN", "nonsense");
        j.set_env("BERTH_DATA_DIR", "file");
        j.set_env("BERTH_DATABASE_URL", "sqlite:adir");
        j.set_env("BERTH_LOG_FORMAT", "xml");
        let e = load(None, &Overrides::default()).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.problems.len(), 4, "{text}");
        assert!(text.contains("http.listen: \"nonsense\""), "{text}");
        assert!(text.contains("data_dir: file is a file, but must be a directory"), "{text}");
        assert!(text.contains("database.url: adir is a directory"), "{text}");
        assert!(text.contains("log.format"), "{text}");
        Ok(())
    });
}

#[test]
fn secrets_in_urls_are_not_echoed() {
    Jail::expect_with(|j| {
        j.set_env("BERTH_DATABASE_URL", "mysql://root:hunter2@db/berth");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("database.url: scheme \"mysql\""), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        Ok(())
    });
}

#[test]
fn typos_and_wrong_types_fail_loudly() {
    Jail::expect_with(|j| {
        j.create_file("t.toml", "[http]\nlisen = \"x\"\n")?;
        let e = load(Some("t.toml"), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("http.lisen") && e.contains("listen"), "{e}");
        j.create_file("n.toml", "[http]\nshutdown_grace_secs = \"soon\"\n")?;
        let e = load(Some("n.toml"), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("http.shutdown_grace_secs"), "{e}");
        j.set_env("BERTH_UPLOADS_MAX_IDLE_HOURS", "-3");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("uploads.max_idle_hours") && e.contains("BERTH_UPLOADS_MAX_IDLE_HOURS"), "{e}");
        j.set_env("BERTH_UPLOADS_MAX_IDLE_HOURS", "3");
        j.set_env("BERTH_GC_TIME_WINDOW_HOURS", "9000");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("gc.time_window_hours: 9000 is out of range"), "{e}");
        j.set_env("BERTH_GC_TIME_WINDOW_HOURS", "0");
        assert_eq!(load(None, &Overrides::default()).unwrap().gc.time_window_hours, 0, "0 is allowed");
        assert_eq!(load(None, &Overrides::default()).unwrap().gc_pause_percent(), 0, "full speed on SQLite by default");
        j.set_env("BERTH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/berth");
        assert_eq!(
            load(None, &Overrides::default()).unwrap().gc_pause_percent(),
            100,
            "paced on PostgreSQL by default"
        );
        j.set_env("BERTH_GC_PAUSE_PERCENT", "0");
        assert_eq!(load(None, &Overrides::default()).unwrap().gc_pause_percent(), 0, "a set value wins");
        j.set_env("BERTH_GC_PAUSE_PERCENT", "1001");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("gc.pause_percent: 1001 is out of range"), "{e}");
        j.set_env("BERTH_GC_PAUSE_PERCENT", "-1");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("gc.pause_percent") && e.contains("BERTH_GC_PAUSE_PERCENT"), "{e}");
        j.set_env("BERTH_GC_PAUSE_PERCENT", "100");
        assert_eq!(load(None, &Overrides::default()).unwrap().gc_pause_percent(), 100);
        Ok(())
    });
}

#[test]
fn config_path_must_be_a_file() {
    Jail::expect_with(|_| {
        std::fs::create_dir("etc").unwrap();
        let e = load(Some("etc"), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("--config: etc is a directory"), "{e}");
        let e = load(Some("missing.toml"), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        Ok(())
    });
}

#[test]
fn auth_settings_are_checked() {
    Jail::expect_with(|j| {
        std::fs::create_dir("keydir").unwrap();
        j.set_env("BERTH_AUTH_MODE", "open");
        j.set_env("BERTH_HTTP_LISTEN", "0.0.0.0:5000");
        j.set_env("BERTH_AUTH_PRIVATE_KEY", "keydir");
        j.set_env("BERTH_AUTH_TOKEN_TTL_MINUTES", "0");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("auth.mode: \"open\" lets anyone push"), "{e}");
        assert!(e.contains("auth.private_key: keydir is a directory, but must be a PEM file"), "{e}");
        assert!(e.contains("auth.token_ttl_minutes"), "{e}");
        j.set_env("BERTH_AUTH_MODE", "ldap");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("auth.mode: \"ldap\" is not supported"), "{e}");
        Ok(())
    });
}

#[test]
fn admin_password_is_never_printed() {
    Jail::expect_with(|j| {
        j.set_env("BERTH_ADMIN_PASSWORD", "Sup3rSecret!");
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!(c.admin.password, "Sup3rSecret!");
        let shown = format!("{c:?}");
        assert!(!shown.contains("Sup3rSecret"), "{shown}");
        Ok(())
    });
}

#[test]
fn postgres_and_redis_from_the_environment_alone() {
    Jail::expect_with(|j| {
        j.set_env(
            "BERTH_DATABASE_URL",
            "postgres://berth:s3cret@db1:5432,db2:5432/berth?target_session_attrs=read-write",
        );
        j.set_env("BERTH_DATABASE_MAX_CONNECTIONS", "40");
        j.set_env("BERTH_DATABASE_STATEMENT_TIMEOUT_SECS", "10");
        j.set_env("BERTH_REDIS_URL", "redis+sentinel://s1:26379,s2:26379/mymaster");
        j.set_env("BERTH_REDIS_TIMEOUT_MS", "250");
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!(
            c.database_kind().unwrap(),
            DatabaseKind::Postgres(
                "postgres://berth:s3cret@db1:5432,db2:5432/berth?target_session_attrs=read-write".into()
            )
        );
        assert_eq!((c.database.max_connections, c.database.statement_timeout_secs), (40, 10));
        assert_eq!((c.database.connect_timeout_secs, c.database.acquire_timeout_secs), (5, 5), "defaults kept");
        assert_eq!(c.redis.url, "redis+sentinel://s1:26379,s2:26379/mymaster");
        assert_eq!(c.redis.timeout_ms, 250);
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://berth:(hidden)@db1:5432,db2:5432/berth"), "{shown}");
        Ok(())
    });
}

#[test]
fn pool_and_redis_settings_are_checked() {
    Jail::expect_with(|j| {
        j.set_env("BERTH_DATABASE_MAX_CONNECTIONS", "0");
        j.set_env("BERTH_DATABASE_ACQUIRE_TIMEOUT_SECS", "0");
        j.set_env("BERTH_REDIS_URL", "memcached://pw@cache:11211");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("database.max_connections: must be at least 1"), "{e}");
        assert!(e.contains("database.acquire_timeout_secs: must be at least 1"), "{e}");
        assert!(e.contains("redis.url: scheme \"memcached\" is not supported"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
        Ok(())
    });
}

#[test]
fn url_passwords_are_redacted() {
    assert_eq!(redact_url("redis://:pw@h:6379/0"), "redis://:(hidden)@h:6379/0");
    assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    assert_eq!(
        redact_url("postgres://h/db?user=u&password=pw&sslmode=disable"),
        "postgres://h/db?user=u&password=(hidden)&sslmode=disable"
    );
    assert_eq!(redact_url("sqlite:/var/lib/berth.db"), "sqlite:/var/lib/berth.db");
}

/// Every key, as `table.key` paths, from the defaults.
fn all_keys() -> Vec<String> {
    fn walk(prefix: &str, dict: &figment::value::Dict, out: &mut Vec<String>) {
        for (k, v) in dict {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                figment::value::Value::Dict(_, d) => walk(&path, d, out),
                _ => out.push(path),
            }
        }
    }
    use figment::Provider;
    let data = Figment::from(Serialized::defaults(Config::default())).data().unwrap();
    let mut out = Vec::new();
    for dict in data.values() {
        walk("", dict, &mut out);
    }
    out
}

#[test]
fn readme_documents_every_key_and_its_environment_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let keys = all_keys();
    assert!(keys.len() >= 20, "{keys:?}");
    for key in keys {
        let env = format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase());
        assert!(readme.contains(&format!("| `{key}` | `{env}` |")), "README's configuration table lacks {key} ({env})");
        // And the variable really sets the key.
        assert_eq!(env_key(&env[ENV_PREFIX.len()..]), key);
    }
}

#[test]
fn s3_storage_settings_are_checked_and_the_secret_hidden() {
    Jail::expect_with(|j| {
        j.set_env("BERTH_STORAGE_KIND", "s3");
        j.set_env("BERTH_STORAGE_S3_ENDPOINT", "garage:3900");
        j.set_env("BERTH_STORAGE_S3_SECRET_KEY", "t0psecret");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("storage.s3_bucket: required"), "{e}");
        assert!(e.contains("storage.s3_access_key: required when storage.s3_secret_key is set"), "{e}");
        assert!(e.contains("storage.s3_endpoint: \"garage:3900\" must start with http://"), "{e}");
        assert!(!e.contains("t0psecret"), "{e}");

        j.set_env("BERTH_STORAGE_S3_ENDPOINT", "http://127.0.0.1:3900");
        j.set_env("BERTH_STORAGE_S3_BUCKET", "registry");
        j.set_env("BERTH_STORAGE_S3_ACCESS_KEY", "GK123");
        j.set_env("BERTH_STORAGE_REDIRECT", "true");
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!(
            (c.storage.s3_bucket.as_str(), c.storage.redirect, c.storage.s3_path_style),
            ("registry", true, true)
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("t0psecret") && shown.contains("GK123"), "{shown}");

        // Neither key: the AWS credential chain, fine. One of them: named.
        j.set_env("BERTH_STORAGE_S3_ACCESS_KEY", "");
        j.set_env("BERTH_STORAGE_S3_SECRET_KEY", "");
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!((c.storage.s3_sse.as_str(), c.storage.s3_sse_kms_key_id.as_str()), ("none", ""));
        j.set_env("BERTH_STORAGE_S3_ACCESS_KEY", "GK123");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("storage.s3_secret_key: required when storage.s3_access_key is set"), "{e}");
        j.set_env("BERTH_STORAGE_S3_SECRET_KEY", "t0psecret");

        // Server-side encryption.
        j.set_env("BERTH_STORAGE_S3_SSE", "kms");
        j.set_env("BERTH_STORAGE_S3_SSE_KMS_KEY_ID", "alias/registry");
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!((c.storage.s3_sse.as_str(), c.storage.s3_sse_kms_key_id.as_str()), ("kms", "alias/registry"));
        j.set_env("BERTH_STORAGE_S3_SSE", "aes256");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("storage.s3_sse_kms_key_id: only used with storage.s3_sse = \"kms\""), "{e}");
        j.set_env("BERTH_STORAGE_S3_SSE", "AES-256");
        j.set_env("BERTH_STORAGE_S3_SSE_KMS_KEY_ID", "");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("storage.s3_sse: \"AES-256\" is not supported"), "{e}");
        j.set_env("BERTH_STORAGE_S3_SSE", "none");

        j.set_env("BERTH_STORAGE_KIND", "filesystem");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("storage.redirect: only the s3 storage"), "{e}");
        j.set_env("BERTH_STORAGE_KIND", "gcs");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("storage.kind: \"gcs\" is not supported; use \"filesystem\" or \"s3\""), "{e}");
        Ok(())
    });
}

#[test]
fn tls_needs_both_files_and_both_readable() {
    Jail::expect_with(|j| {
        j.set_env("BERTH_HTTP_TLS_CERT", "server.crt");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("http.tls_key: required with http.tls_cert"), "{e}");
        j.create_file("server.crt", "x")?;
        std::fs::create_dir("keys").unwrap();
        j.set_env("BERTH_HTTP_TLS_KEY", "keys");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("http.tls_key: keys is a directory"), "{e}");
        j.set_env("BERTH_HTTP_TLS_KEY", "missing.key");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("http.tls_key: cannot read missing.key") && !e.contains("http.tls_cert"), "{e}");
        j.create_file("server.key", "x")?;
        j.set_env("BERTH_HTTP_TLS_KEY", "server.key");
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!((c.http.tls_cert.as_str(), c.http.tls_key.as_str()), ("server.crt", "server.key"));
        Ok(())
    });
}

#[test]
fn redis_tls_ca_goes_with_rediss() {
    Jail::expect_with(|j| {
        j.set_env("BERTH_REDIS_URL", "redis://cache:6379");
        j.set_env("BERTH_REDIS_TLS_CA", "ca.crt");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("redis.tls_ca: only used with TLS"), "{e}");
        j.set_env("BERTH_REDIS_URL", "rediss+sentinel://s1:26379/mymaster");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("redis.tls_ca: cannot read ca.crt"), "{e}");
        j.create_file("ca.crt", "x")?;
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!(c.redis.tls_ca, "ca.crt");
        j.set_env("BERTH_REDIS_URL", "rediss://berth:pw@cache:6380");
        load(None, &Overrides::default()).unwrap();
        Ok(())
    });
}

#[test]
fn registry_health_interval_is_a_regular_cron() {
    let cron = |s| Jobs { registry_health_secs: s, ..Jobs::default() }.registry_health_cron();
    assert_eq!(cron(300).as_deref(), Some("0 */5 * * * *"));
    assert_eq!(cron(10).as_deref(), Some("*/10 * * * * *"));
    assert_eq!(cron(3600).as_deref(), Some("0 0 * * * *"));
    for bad in [0, 45, 90, 7200] {
        assert_eq!(cron(bad), None, "{bad}");
    }
    Jail::expect_with(|j| {
        j.set_env("BERTH_JOBS_REGISTRY_HEALTH_SECS", "45");
        let text = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(text.contains("jobs.registry_health_secs: 45"), "{text}");
        j.set_env("BERTH_JOBS_REGISTRY_HEALTH_SECS", "15");
        assert_eq!(load(None, &Overrides::default()).unwrap().jobs.registry_health_secs, 15);
        Ok(())
    });
}

#[test]
fn scanner_adapter_key_is_checked_and_never_shown() {
    Jail::expect_with(|j| {
        j.set_env("BERTH_SCAN_ADAPTER_API_KEY", "short");
        j.set_env("BERTH_SCAN_EXTERNAL_TIMEOUT_SECS", "0");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("scan.adapter_api_key: must be at least 16 characters"), "{e}");
        assert!(e.contains("scan.external_timeout_secs: must be at least 1"), "{e}");
        assert!(!e.contains("short"), "{e}");
        j.set_env("BERTH_SCAN_ADAPTER_API_KEY", "k3y-0123456789abcdef");
        j.set_env("BERTH_SCAN_EXTERNAL_TIMEOUT_SECS", "60");
        let c = load(None, &Overrides::default()).unwrap();
        assert_eq!(c.scan.adapter_api_key, "k3y-0123456789abcdef");
        assert_eq!(c.scan.external_timeout_secs, 60);
        let shown = format!("{c:?}");
        assert!(!shown.contains("k3y-0123456789abcdef") && shown.contains("(set, hidden)"), "{shown}");
        Ok(())
    });
}
