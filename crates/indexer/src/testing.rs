//! Test support: one throwaway database per test on either backend, so the indexer's tests
//! (unit, integration and benchmarks) run the same code on SQLite and on Postgres.
//!
//! Owns: creating a fresh SQLite file in a temporary directory, or a fresh Postgres database
//! on the server named by [`POSTGRES_URL_ENV`] (dropped again when the [`TestDb`] is dropped),
//! and [`backend_tests!`](crate::backend_tests), which turns one `async fn(Backend)` into one
//! test per backend. Must never touch a database it did not create: it only creates and drops
//! databases named `licen_test_…`.

use crate::db::{Backend, Db, redact};
use crate::error::{Error, Result};
use sqlx::{Connection, Executor};
use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming a Postgres server for tests (any database on it, typically
/// `postgres://postgres@127.0.0.1:5432/postgres`). Each test creates its own database there.
/// `cargo xtask test` starts a throwaway cluster and sets it; without it the Postgres variant of
/// every test is skipped with a printed reason.
pub const POSTGRES_URL_ENV: &str = "LICEN_TEST_POSTGRES_URL";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh, empty database for one test.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    backend: Backend,
    /// Holds the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
    /// `(admin URL, database name)` of a Postgres database to drop.
    postgres: Option<(String, String)>,
}

/// Replaces the database name (the URL path) of a Postgres URL.
fn with_database(url: &str, database: &str) -> Result<String> {
    let after_scheme = url
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| Error::Config(format!("`{}` is not a postgres:// URL", redact(url))))?;
    let rest = &url[after_scheme..];
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let query = rest[host_end..].find('?').map(|q| &rest[host_end + q..]);
    Ok(format!(
        "{}{}/{database}{}",
        &url[..after_scheme],
        &rest[..host_end],
        query.unwrap_or("")
    ))
}

impl TestDb {
    /// A fresh database on `backend`; `None` (after printing why) when the backend is not
    /// available here: Postgres without [`POSTGRES_URL_ENV`].
    pub async fn create(backend: Backend) -> Result<Option<Self>> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().map_err(|source| Error::Io {
                    context: "creating a temporary directory for a test database".into(),
                    source,
                })?;
                let path = dir.path().join("index.sqlite");
                let url = format!("sqlite://{}?mode=rwc", path.display());
                Ok(Some(Self {
                    url,
                    backend,
                    _dir: Some(dir),
                    postgres: None,
                }))
            }
            Backend::Postgres => {
                let Ok(admin) = std::env::var(POSTGRES_URL_ENV) else {
                    eprintln!(
                        "skipped on Postgres: {POSTGRES_URL_ENV} is not set (cargo xtask test starts a \
                         throwaway Postgres and sets it; or point it at a server you may create databases on)"
                    );
                    return Ok(None);
                };
                let name = format!(
                    "licen_test_{}_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos())
                );
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(&admin).await.map_err(|e| {
                    Error::Config(format!(
                        "{POSTGRES_URL_ENV}={}: cannot connect: {e}",
                        redact(&admin)
                    ))
                })?;
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await?;
                conn.close().await?;
                Ok(Some(Self {
                    url: with_database(&admin, &name)?,
                    backend,
                    _dir: None,
                    postgres: Some((admin, name)),
                }))
            }
        }
    }

    /// The database's URL (what [`Db::connect`] takes).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens it (again: a second call sees what the first stored, as after a restart).
    pub async fn open(&self) -> Db {
        Db::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open the test database {}: {e}", redact(&self.url)))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let database = name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::AnyConnection::connect(&admin).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test database {name}; it is left on the server");
        }
    }
}

/// Declares one test per backend for each `async fn name(backend: Backend)` listed: modules
/// `sqlite` and `postgres` each get a `#[tokio::test] name`. The function itself creates its
/// database with [`TestDb::create`] and returns early when that says the backend is absent.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::db::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::db::Backend::Postgres).await;
                }
            )+
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_of_a_postgres_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres", "x").unwrap(),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(
            with_database("postgresql://u@h", "x").unwrap(),
            "postgresql://u@h/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?host=/run/pg&port=5", "x").unwrap(),
            "postgres://u@h/x?host=/run/pg&port=5"
        );
    }
}
