//! Berth's integration tests: the real binary on an ephemeral port with a temp dir,
//! driven over HTTP and by real clients (skopeo, podman).

mod auth;
mod authz_matrix;
mod clients;
mod config;
mod crash;
mod deploy;
mod e2e_login;
mod gc;
mod ha_faults;
mod ha_postgres;
mod ha_redis;
mod ha_s3;
mod harbor_api;
mod harbor_artifacts;
mod harbor_labels;
mod harbor_misc;
mod immutable;
mod jobs;
mod oci_api;
mod ops;
mod outbox;
mod pgpair;
mod proxy_cache;
mod quotas;
mod replication;
mod retention;
mod scanning;
mod settings;
mod signatures;
mod support;
mod tls;
mod ui;
mod ui_browser;
mod webhooks;
