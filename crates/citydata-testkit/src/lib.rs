//! citydata-testkit: boot the real application for tests — port 0, a fresh temporary data
//! directory, a fresh SQLite database, or a fresh PostgreSQL database when
//! `CITYDATA_TEST_DATABASE_URL` is set — and speak HTTP to it.
#![forbid(unsafe_code)]

use citydata_server::{Application, Overrides, Settings};
use citydata_store::Store;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::oneshot;

pub use citydata_core::demo::DEMO_PASSWORD;

pub mod mqtt;
pub mod oidc_mock;
pub mod s3;

/// Options for [`spawn_app_with`].
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// Seed the demo departments and users (default true).
    pub demo: bool,
    /// Largest JSON body (default: the server default).
    pub max_body_bytes: Option<usize>,
    /// Use this database instead of a fresh one (e.g. two apps sharing one PostgreSQL).
    pub database_url: Option<String>,
    /// With `demo: false`: still seed the demo departments and users (an empty catalog).
    pub accounts_only: bool,
    /// Demo population rows to load at start (default 0: tests ingest what they need).
    pub demo_rows: u64,
    /// Largest data upload (default: the server default).
    pub max_upload_bytes: Option<u64>,
    /// Webhook attempts before giving up (default: the server default).
    pub webhook_max_attempts: Option<u32>,
    /// The 安全承诺书 (default: the built-in text).
    pub commitment_text: Option<String>,
    /// Memory one SQL statement may use, in MiB (default: the server default).
    pub sql_memory_mib: Option<u64>,
    /// The audit checkpoint key (default: `audit.key` in the app's data directory). Nodes that
    /// share a database share this key, as they share `secret_key`.
    pub audit_key_file: Option<std::path::PathBuf>,
    /// Change any other setting before the app is built (e.g. `trusted_proxies`,
    /// `webhook_allow_cidrs`, `metrics_token`).
    pub configure: Option<fn(&mut Settings)>,
    /// A `citydata.toml` to load (e.g. `[oidc.providers.NAME]` naming a provider the test
    /// started), written into the app's data directory.
    pub config_toml: Option<String>,
    /// Keep the lake in this S3 bucket ([`s3::Moto::lake`]) instead of the data directory.
    pub s3: Option<s3::S3Lake>,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        Self {
            demo: true,
            max_body_bytes: None,
            database_url: None,
            accounts_only: false,
            demo_rows: 0,
            max_upload_bytes: None,
            webhook_max_attempts: None,
            commitment_text: None,
            sql_memory_mib: None,
            audit_key_file: None,
            configure: None,
            config_toml: None,
            s3: None,
        }
    }
}

/// A running app; dropped at the end of the test (the server stops with the runtime).
pub struct TestApp {
    pub address: String,
    /// `http://host:port` of the separate metrics listener, when `metrics_addr` is configured.
    pub metrics_address: Option<String>,
    pub database_url: String,
    pub data_dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    /// The running app's use cases (for periodic jobs a test drives with its own clock).
    pub core: citydata_core::Core,
    /// A client with a cookie jar, not logged in.
    pub client: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
}

/// `true` when the tests run against PostgreSQL.
pub fn using_postgres() -> bool {
    citydata_store_postgres::testing::admin_url().is_some()
}

/// For a test that needs PostgreSQL: `false` (skip) when `CITYDATA_TEST_DATABASE_URL` is unset,
/// a failure instead under `CI=true` unless the run is the SQLite half
/// (`citydata_store_postgres::testing::admin_url_or_skip`).
pub fn postgres_or_skip(test: &str) -> bool {
    citydata_store_postgres::testing::admin_url_or_skip(test).is_some()
}

/// A fresh database URL: PostgreSQL when configured, else SQLite in `dir`.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match citydata_store_postgres::testing::admin_url() {
        Some(admin) => citydata_store_postgres::testing::create_database(&admin)
            .await
            .expect("create a PostgreSQL test database (is CITYDATA_TEST_DATABASE_URL reachable, with CREATEDB?)"),
        None => format!("sqlite://{}", dir.join("citydata.db").display()),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(SpawnOptions::default()).await
}

pub async fn spawn_app_with(opts: SpawnOptions) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database_url = match opts.database_url.clone() {
        Some(u) => u,
        None => fresh_database_url(data_dir.path()).await,
    };
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.path().to_path_buf()),
        database_url: Some(database_url.clone()),
        demo: Some(opts.demo),
    };
    let config_file = opts.config_toml.as_ref().map(|t| {
        let path = data_dir.path().join("citydata.toml");
        std::fs::write(&path, t).expect("write citydata.toml");
        path
    });
    let mut settings = Settings::load(config_file.as_deref(), &overrides).expect("settings");
    if let Some(m) = opts.max_body_bytes {
        settings.max_body_bytes = m;
    }
    settings.demo_rows = opts.demo_rows;
    if let Some(m) = opts.max_upload_bytes {
        settings.max_upload_bytes = m;
    }
    // Retries in tests: 100 ms, 200 ms, 400 ms, … instead of 30 s, 60 s, …
    settings.webhook_retry_base_ms = 100;
    if let Some(m) = opts.webhook_max_attempts {
        settings.webhook_max_attempts = m;
    }
    settings.commitment_text = opts.commitment_text.clone();
    if let Some(m) = opts.sql_memory_mib {
        settings.sql_memory_mib = m;
    }
    if let Some(k) = opts.audit_key_file.clone() {
        settings.audit_key_file = Some(k);
    }
    if let Some(f) = opts.configure {
        f(&mut settings);
    }
    if let Some(l) = &opts.s3 {
        l.configure(&mut settings);
    }
    let app = Application::build(settings.resolve().expect("resolve settings")).await.expect("build app");
    if opts.accounts_only {
        app.core().seed_demo_accounts().await.expect("seed demo accounts");
    }
    let address = format!("http://{}", app.local_addr());
    let metrics_address = app.metrics_addr().map(|a| format!("http://{a}"));
    let store = app.core().store().clone();
    let core = app.core().clone();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp { address, metrics_address, database_url, data_dir, store, core, client: new_client(), _shutdown: tx }
}

pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).build().expect("client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A new client logged in as `username` with the demo password.
    pub async fn login(&self, username: &str) -> reqwest::Client {
        let c = new_client();
        let r = c
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": DEMO_PASSWORD }))
            .send()
            .await
            .expect("login request");
        assert_eq!(r.status(), 200, "login as {username} failed: {}", r.text().await.unwrap_or_default());
        c
    }

    /// A new client logged in as `username` with the demo password and a second-factor code.
    pub async fn login_with_totp(&self, username: &str, code: &str) -> reqwest::Client {
        let c = new_client();
        let r = c
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": DEMO_PASSWORD, "totp_code": code }))
            .send()
            .await
            .expect("login request");
        assert_eq!(r.status(), 200, "login as {username} failed: {}", r.text().await.unwrap_or_default());
        c
    }

    /// An API token for `username` (logging in to create it).
    pub async fn token(&self, username: &str) -> String {
        let c = self.login(username).await;
        let r = c.post(self.url("/api/v1/tokens")).json(&json!({ "name": "test" })).send().await.unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    }

    /// The first column, as text, of every row of `sql` on the app's database (to look at what
    /// is stored, beneath the API).
    pub async fn sql_strings(&self, sql: &str) -> Vec<String> {
        if self.database_url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
            let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows.into_iter().map(|r| r.0).collect()
        } else {
            let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
            let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
            pool.close().await;
            rows.into_iter().map(|r| r.0).collect()
        }
    }

    /// Run one SQL statement directly on the app's database (to tamper with it in tests).
    pub async fn exec_sql(&self, sql: &str) {
        if self.database_url.starts_with("sqlite:") {
            let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

/// Assert an API error envelope with `status` and `code`; returns the body.
pub async fn assert_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "unexpected status, body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "message missing: {body}");
    body
}

/// A Python interpreter that can `import module` (a real client from PyPI the tests drive):
/// `CITYDATA_PYTHON`, else `python3`. `None` outside CI when there is none; under `CI=true` a
/// missing client fails the test instead of skipping it.
pub fn python_with(module: &str) -> Option<String> {
    let candidates = std::env::var("CITYDATA_PYTHON").into_iter().chain(["python3".to_string()]);
    for p in candidates {
        let ok = std::process::Command::new(&p)
            .args(["-c", &format!("import {module}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(p);
        }
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but no Python with {module}: set CITYDATA_PYTHON to a venv with `pip install {module}`"
    );
    eprintln!("skipped: no Python with {module} (set CITYDATA_PYTHON)");
    None
}
