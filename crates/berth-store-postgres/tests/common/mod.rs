//! A fresh database per test, on the server `PG_TEST_URL` names (default: the local
//! trust-auth server), dropped when the test ends, even by a panic.
#![allow(dead_code)]

use std::time::Duration;

use berth_store_postgres::{PgOptions, PgStore};
use tokio_postgres::{Client, NoTls};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("PG_TEST_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A new empty database, or `None` (after saying so) when there is no server to test
    /// against. In CI a missing server fails the test instead: there it is a setup error.
    pub async fn create() -> Option<TestDb> {
        let admin = admin_url();
        let client = match tokio::time::timeout(Duration::from_secs(5), connect(&admin)).await {
            Ok(Ok(c)) => c,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => match std::error::Error::source(&e) {
                        Some(cause) => format!("{e}: {cause}"),
                        None => e.to_string(),
                    },
                    _ => "no answer within 5s".to_owned(),
                };
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("PostgreSQL is required in CI but unreachable at PG_TEST_URL ({why})");
                }
                eprintln!("skipped: no PostgreSQL at PG_TEST_URL or the default local server ({why})");
                return None;
            }
        };
        let name = format!("berth_t_{}", uuid::Uuid::new_v4().simple());
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
        let url = with_database(&admin, &name);
        Some(TestDb { name, url })
    }

    pub fn options(&self) -> PgOptions {
        PgOptions::new(self.url.clone())
    }

    pub async fn store(&self) -> PgStore {
        PgStore::connect(self.options()).await.expect("connect to the test database")
    }

    /// A side connection to the test database, as an operator's psql would have.
    pub async fn side(&self) -> Client {
        connect(&self.url).await.expect("side connection")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.side().await.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (admin_url(), self.name.clone());
        // Its own thread and runtime: drop may run inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let client = connect(&admin).await?;
                client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

#[test]
fn database_is_replaced_in_urls() {
    assert_eq!(with_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    assert_eq!(
        with_database("postgres://u@h1:1,h2:2/db?sslmode=disable", "x"),
        "postgres://u@h1:1,h2:2/x?sslmode=disable"
    );
}
