//! Helpers for tests that need a fresh PostgreSQL database (used by this crate's suite and by
//! `citydata-testkit`).

use sqlx::{Connection, PgConnection};

/// The server to create test databases on: `CITYDATA_TEST_DATABASE_URL`, when set and non-empty.
pub fn admin_url() -> Option<String> {
    std::env::var("CITYDATA_TEST_DATABASE_URL").ok().filter(|s| !s.trim().is_empty())
}

/// For a test that runs only on PostgreSQL: the admin URL, or `None` (the test skips, saying so)
/// when `CITYDATA_TEST_DATABASE_URL` is unset. Under `CI=true` an unset URL fails the test
/// instead, unless the run declares itself the SQLite half (`CITYDATA_TEST_BACKEND=sqlite`, as
/// `.ci/run` sets for its first pass): CI never skips the PostgreSQL half because a variable
/// went missing.
pub fn admin_url_or_skip(test: &str) -> Option<String> {
    if let Some(url) = admin_url() {
        return Some(url);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let sqlite_half = std::env::var("CITYDATA_TEST_BACKEND").is_ok_and(|v| v == "sqlite");
    assert!(
        !ci || sqlite_half,
        "{test}: CI=true but CITYDATA_TEST_DATABASE_URL is not set, so the PostgreSQL tests would be skipped: \
         set it (scripts/pg-setup.sh prints one), or CITYDATA_TEST_BACKEND=sqlite for a SQLite-only run"
    );
    eprintln!("skipped {test}: set CITYDATA_TEST_DATABASE_URL to run it on PostgreSQL");
    None
}

/// Create an empty database with a unique name on the server of `admin_url` and return its URL.
pub async fn create_database(admin_url: &str) -> Result<String, sqlx::Error> {
    let name = format!("citydata_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    conn.close().await?;
    Ok(replace_database(admin_url, &name))
}

/// `admin_url` with its database name replaced by `name` (query string kept).
pub fn replace_database(admin_url: &str, name: &str) -> String {
    match url::Url::parse(admin_url) {
        Ok(mut u) => {
            u.set_path(&format!("/{name}"));
            u.to_string()
        }
        // Not a URL sqlx could use either; the connection will say so.
        Err(_) => admin_url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_database_name() {
        assert_eq!(super::replace_database("postgres://u:p@h:5432/postgres", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(super::replace_database("postgres://u:p@h:5432", "x"), "postgres://u:p@h:5432/x");
        assert_eq!(super::replace_database("postgres://h/db?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
    }
}
