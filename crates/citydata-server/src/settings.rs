//! Layered configuration: defaults < `citydata.toml` (or `--config FILE`) < `CITYDATA__*`
//! environment variables (`__` separates nested keys) < command-line flags.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A secret value: never shown by `Debug` or by `config show`.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The configuration as layered from every source, before defaults that depend on the data
/// directory are filled in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite file, the lake, the search index and the generated secret live.
    pub data_dir: PathBuf,
    /// Metadata database: `sqlite://...` or `postgres://...`. Default: SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// Table storage: a path or `s3://...` URL. Default: `data_dir/lake`.
    pub lake_url: Option<String>,
    /// With `lake_url = "s3://bucket/prefix"`: endpoint, region, credentials, path style
    /// (`[lake_s3]`, `CITYDATA__LAKE_S3__ENDPOINT` …; see `citydata_lake::storage`).
    #[serde(default)]
    pub lake_s3: citydata_lake::storage::S3Settings,
    /// The key that signs audit checkpoints (32 random bytes, created 0600 when missing), kept
    /// outside the database; signed checkpoints are appended to `audit-checkpoints.jsonl`
    /// beside it. Default: `data_dir/audit.key`. In production put it on another volume than
    /// the database (or behind an HSM), so that whoever can rewrite the database cannot re-sign.
    pub audit_key_file: Option<PathBuf>,
    /// The address users reach the server at (`public_url` is the same setting): every
    /// absolute URL the server writes (API examples, CKAN and DCAT links, webhook payloads)
    /// starts with it; unset, the request's `Host` is used. Cookies are `Secure` when https.
    #[serde(alias = "public_url")]
    pub public_base_url: Option<String>,
    /// Key for sessions and HMAC pseudonyms. Generated into `data_dir/secret_key` when absent.
    pub secret_key: Option<Secret>,
    pub log_format: LogFormat,
    /// Largest accepted JSON request body, in bytes.
    pub max_body_bytes: usize,
    /// Login session lifetime, in hours.
    pub session_ttl_hours: u32,
    /// A session unused this many minutes ends (0: no idle timeout).
    pub session_idle_minutes: u32,
    /// Seed the demo city, departments and users at start.
    pub demo: bool,
    /// With `demo`: rows of the demo population register loaded at first start (enterprises:
    /// a fifth of it; 0 loads no data).
    pub demo_rows: u64,
    /// Consume the enabled MQTT streams (物联网数据流) on this node (one node per stream, by
    /// lease). Off, the node serves the API only.
    pub iot_streams: bool,
    /// With `demo`: connect the demo's 空气质量实时监测数据 to this broker (`mqtt://host:port`,
    /// topic `citydata/air/+`; `scripts/iot-simulate.sh` publishes stations there).
    pub demo_mqtt_url: Option<String>,
    /// Largest data upload, in bytes.
    pub max_upload_bytes: u64,
    /// Largest file distribution (`POST /api/v1/resources/{id}/files`), in bytes.
    pub max_file_bytes: u64,
    /// Working days a provider has to answer a request.
    pub response_days: u32,
    /// The platform's time zone as a fixed offset (`+08:00`, default; `UTC+8` also reads):
    /// naive times in uploads, filters and SQL are local times there, and every surface writes
    /// times in it (RFC 3339 with the offset). One zone per process.
    pub time_zone: String,
    /// Public holidays (YYYY-MM-DD) for the response-time clock.
    pub holidays: Vec<String>,
    /// Make-up working days (调休上班, YYYY-MM-DD), usually weekend days.
    pub makeup_workdays: Vec<String>,
    /// Milliseconds before the first retry of a failed webhook delivery (doubled each time).
    pub webhook_retry_base_ms: u64,
    /// Attempts before a webhook delivery is given up (`failed`).
    pub webhook_max_attempts: u32,
    /// The security commitment (安全承诺书) public applicants accept; default: the built-in text.
    pub commitment_text: Option<String>,
    /// Memory one SQL statement may use, in MiB (default 512).
    pub sql_memory_mib: u64,
    /// SQL statements one user may run at once, on all nodes together (default 2).
    pub sql_concurrency: u32,
    /// The resource (code or slug) giving district outlines for `within(item, '<code>')`: it
    /// must be published and opened unconditionally, with a GB/T 2260 code item and a
    /// `geometry` item (default: none, and region filters are refused).
    pub boundary_resource: Option<String>,
    /// The portal's name (Chinese, and English for `?lang=en`).
    pub site_name: String,
    pub site_name_en: String,
    /// A logo image URL for the portal's header (default: the embedded logo).
    pub logo_url: Option<String>,
    /// The portal's main color (`#rrggbb` or a CSS color name).
    pub primary_color: String,
    /// A directory of templates that replace the embedded ones of the same name.
    pub template_dir: Option<PathBuf>,
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For` names the client; from any other
    /// peer the header is ignored. Empty: the direct peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Bearer token that `GET /metrics` requires on the main listener. Without it (and without
    /// `metrics_addr`) `/metrics` is not served.
    pub metrics_token: Option<Secret>,
    /// A separate listener serving only `/metrics` (e.g. `127.0.0.1:9090`, reachable by the
    /// monitoring network only); it asks for `metrics_token` too when that is set.
    pub metrics_addr: Option<SocketAddr>,
    /// Internal ranges (CIDRs) webhooks may reach; loopback, link-local, private and
    /// unique-local addresses are refused otherwise.
    pub webhook_allow_cidrs: Vec<String>,
    /// Failed logins within `login_window_minutes` before 429: per username and client …
    pub login_max_failures: u32,
    /// … per client address, whatever the usernames …
    pub login_max_failures_per_client: u32,
    /// … and per username, whatever the client addresses.
    pub login_max_failures_per_user: u32,
    pub login_window_minutes: u32,
    /// Password hashes computed at once (0: the number of cores).
    pub password_hash_concurrency: usize,
    /// Milliseconds a login waits for a hashing slot before 503 with `Retry-After`.
    pub password_queue_timeout_ms: u64,
    /// Most bytes an upload may expand to when decompressed (gzip, XLSX).
    pub max_decompressed_bytes: u64,
    /// Most decompressed bytes per compressed byte (checked past 8 MiB).
    pub max_decompression_ratio: u64,
    /// This node's name in ingest leases; default: an id generated once into
    /// `data_dir/node-id`. Each node of a cluster needs its own.
    pub node_name: Option<String>,
    /// Seconds an ingest's lease lasts (renewed every quarter of it while the ingest runs); a
    /// running ingest whose lease ended — its node died — is settled by any node.
    pub ingest_lease_secs: u64,
    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT (new connections
    /// are refused at once); then the process exits anyway.
    pub shutdown_grace_secs: u64,
    /// The quality score's weights (GB/T 36344 dimensions), normalized by their sum.
    pub quality_weights: citydata_domain::quality::QualityWeights,
    /// Working days the provider has to answer a 纠错 ticket.
    pub ticket_sla_days: u32,
    /// Days after which a fixed ticket the reporter did not confirm closes.
    pub ticket_autoclose_days: u32,
    /// 核验: a verification grant's default daily quota and largest batch (records), and the
    /// records one user may verify per day over all grants.
    pub verify_daily_quota: u32,
    pub verify_max_batch: u32,
    pub verify_user_daily_quota: u32,
    /// 核验 requests one user may make per second, counted over all nodes (0: no limit).
    pub verify_per_second: u32,
    /// 电子证照核验: verifications one client address may ask per minute, over all nodes.
    pub license_verify_per_minute: u32,
    /// The Ed25519 seed (64 hex digits) signing license receipts; unset, `data_dir/receipt_key`
    /// (made at first start, mode 0600). Nodes behind one address should share it.
    pub license_receipt_key: Option<Secret>,
    /// 统一身份认证: OpenID Connect providers (`[oidc.providers.NAME]`), and whether staff
    /// keep local passwords (`local_login = "operators"` keeps them for `operators` only).
    pub oidc: citydata_core::oidc::OidcSettings,
    /// 动态口令: platform and department admins signing in with a local password need a TOTP
    /// code (enrolled at their next login).
    pub totp_required_for_admins: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("static address"),
            data_dir: PathBuf::from("./citydata-data"),
            database_url: None,
            lake_url: None,
            lake_s3: Default::default(),
            audit_key_file: None,
            public_base_url: None,
            secret_key: None,
            log_format: LogFormat::Text,
            max_body_bytes: 2 * 1024 * 1024,
            session_ttl_hours: 12,
            session_idle_minutes: 120,
            demo: false,
            demo_rows: 100_000,
            iot_streams: true,
            demo_mqtt_url: None,
            max_upload_bytes: 4 * 1024 * 1024 * 1024,
            max_file_bytes: 512 * 1024 * 1024,
            response_days: 10,
            time_zone: "+08:00".into(),
            holidays: vec![],
            makeup_workdays: vec![],
            webhook_retry_base_ms: 30_000,
            webhook_max_attempts: 8,
            commitment_text: None,
            sql_memory_mib: 512,
            sql_concurrency: 2,
            boundary_resource: None,
            site_name: "城市公共数据开放平台".into(),
            site_name_en: "City Open Data Portal".into(),
            logo_url: None,
            primary_color: "#b4232a".into(),
            template_dir: None,
            trusted_proxies: vec![],
            metrics_token: None,
            metrics_addr: None,
            webhook_allow_cidrs: vec![],
            login_max_failures: 10,
            login_max_failures_per_client: 30,
            login_max_failures_per_user: 100,
            login_window_minutes: 15,
            password_hash_concurrency: 0,
            password_queue_timeout_ms: 5000,
            max_decompressed_bytes: 4 * 1024 * 1024 * 1024,
            max_decompression_ratio: 200,
            node_name: None,
            ingest_lease_secs: 120,
            shutdown_grace_secs: 30,
            quality_weights: citydata_domain::quality::QualityWeights::default(),
            ticket_sla_days: 5,
            ticket_autoclose_days: 14,
            verify_daily_quota: 10_000,
            verify_max_batch: 1_000,
            verify_user_daily_quota: 20_000,
            verify_per_second: 50,
            license_verify_per_minute: 30,
            license_receipt_key: None,
            oidc: Default::default(),
            totp_required_for_admins: false,
        }
    }
}

/// Values given as command-line flags; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demo: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
}

impl Settings {
    /// Layer defaults, the configuration file, `CITYDATA__*` variables and `overrides`.
    /// Without `config_file`, `./citydata.toml` is read when it exists.
    pub fn load(config_file: Option<&Path>, overrides: &Overrides) -> Result<Self, SettingsError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        match config_file {
            Some(p) if !p.exists() => return Err(SettingsError::MissingFile(p.to_path_buf())),
            Some(p) => fig = fig.merge(Toml::file(p)),
            None if Path::new("citydata.toml").exists() => fig = fig.merge(Toml::file("citydata.toml")),
            None => {}
        }
        fig = fig.merge(Env::prefixed("CITYDATA__").split("__")).merge(Serialized::globals(overrides));
        fig.extract().map_err(|e| SettingsError::Invalid(e.to_string()))
    }

    /// Fill in the defaults that depend on the data directory (creating it), reading or
    /// generating the secret key.
    pub fn resolve(self) -> Result<ResolvedSettings, SettingsError> {
        let dd = |source| SettingsError::DataDir { path: self.data_dir.clone(), source };
        std::fs::create_dir_all(&self.data_dir).map_err(dd)?;
        let data_dir = self.data_dir.canonicalize().map_err(dd)?;
        let database_url = self
            .database_url
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("citydata.db").display()));
        let lake_url = self
            .lake_url
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| data_dir.join("lake").display().to_string());
        let audit_key_file = self
            .audit_key_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| data_dir.join("audit.key"));
        let secret_key = match &self.secret_key {
            Some(s) if !s.expose().is_empty() => s.clone(),
            _ => load_or_create_secret(&data_dir).map_err(dd)?,
        };
        if let Some(u) = &self.public_base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(SettingsError::Invalid(format!(
                "public_base_url must start with http:// or https://, got {u}"
            )));
        }
        let zone = citydata_domain::cast::parse_offset(&self.time_zone).ok_or_else(|| {
            SettingsError::Invalid(format!("time_zone must be an offset such as +08:00, got {}", self.time_zone))
        })?;
        if !citydata_domain::cast::set_local_offset(zone) {
            return Err(SettingsError::Invalid(format!(
                "time_zone {} differs from the zone already in use in this process ({})",
                self.time_zone,
                citydata_domain::cast::local_zone_name()
            )));
        }
        citydata_domain::calendar::WorkCalendar::parse_dates(&self.holidays)
            .map_err(|e| SettingsError::Invalid(format!("holidays: {e}")))?;
        citydata_domain::calendar::WorkCalendar::parse_dates(&self.makeup_workdays)
            .map_err(|e| SettingsError::Invalid(format!("makeup_workdays: {e}")))?;
        citydata_core::net::parse_cidrs(&self.trusted_proxies)
            .map_err(|e| SettingsError::Invalid(format!("trusted_proxies: {e}")))?;
        citydata_core::net::parse_cidrs(&self.webhook_allow_cidrs)
            .map_err(|e| SettingsError::Invalid(format!("webhook_allow_cidrs: {e}")))?;
        if self.max_body_bytes < 1024 {
            return Err(SettingsError::Invalid("max_body_bytes must be at least 1024".into()));
        }
        Ok(ResolvedSettings { database_url, lake_url, audit_key_file, secret_key, data_dir, settings: self })
    }
}

fn load_or_create_secret(data_dir: &Path) -> std::io::Result<Secret> {
    let path = data_dir.join("secret_key");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(Secret(s));
        }
    }
    let mut buf = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    let s = hex::encode(buf);
    write_private(&path, &s)?;
    Ok(Secret(s))
}

#[cfg(unix)]
fn write_private(path: &Path, s: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(s.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, s: &str) -> std::io::Result<()> {
    std::fs::write(path, s)
}

/// Settings with every default filled in.
#[derive(Debug, Clone)]
pub struct ResolvedSettings {
    pub settings: Settings,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub lake_url: String,
    pub audit_key_file: PathBuf,
    pub secret_key: Secret,
}

impl ResolvedSettings {
    /// The effective configuration as TOML, secrets and database passwords redacted.
    pub fn to_redacted_toml(&self) -> String {
        let s = &self.settings;
        let mut t = toml::map::Map::new();
        t.insert("listen".into(), s.listen.to_string().into());
        t.insert("data_dir".into(), self.data_dir.display().to_string().into());
        t.insert("database_url".into(), redact_url_password(&self.database_url).into());
        t.insert("lake_url".into(), self.lake_url.clone().into());
        if self.lake_url.starts_with("s3") {
            let mut s3 = toml::map::Map::new();
            let l = &s.lake_s3;
            for (k, v) in [("endpoint", &l.endpoint), ("region", &l.region), ("access_key_id", &l.access_key_id)] {
                if let Some(v) = v {
                    s3.insert(k.into(), v.clone().into());
                }
            }
            if l.secret_access_key.is_some() {
                s3.insert("secret_access_key".into(), "<redacted>".into());
            }
            s3.insert("path_style".into(), l.path_style.unwrap_or(true).into());
            s3.insert("allow_http".into(), l.allow_http.into());
            t.insert("lake_s3".into(), s3.into());
        }
        t.insert("audit_key_file".into(), self.audit_key_file.display().to_string().into());
        if let Some(u) = &s.public_base_url {
            t.insert("public_base_url".into(), u.clone().into());
        }
        t.insert("secret_key".into(), "<redacted>".into());
        t.insert("log_format".into(), if s.log_format == LogFormat::Json { "json" } else { "text" }.into());
        t.insert("max_body_bytes".into(), (s.max_body_bytes as i64).into());
        t.insert("session_ttl_hours".into(), i64::from(s.session_ttl_hours).into());
        t.insert("session_idle_minutes".into(), i64::from(s.session_idle_minutes).into());
        t.insert("demo".into(), s.demo.into());
        t.insert("demo_rows".into(), (s.demo_rows as i64).into());
        t.insert("iot_streams".into(), s.iot_streams.into());
        if let Some(u) = &s.demo_mqtt_url {
            t.insert("demo_mqtt_url".into(), redact_url_password(u).into());
        }
        t.insert("max_upload_bytes".into(), (s.max_upload_bytes as i64).into());
        t.insert("max_file_bytes".into(), (s.max_file_bytes as i64).into());
        t.insert("response_days".into(), i64::from(s.response_days).into());
        t.insert("time_zone".into(), s.time_zone.clone().into());
        t.insert("holidays".into(), toml::Value::Array(s.holidays.iter().map(|d| d.clone().into()).collect()));
        t.insert(
            "makeup_workdays".into(),
            toml::Value::Array(s.makeup_workdays.iter().map(|d| d.clone().into()).collect()),
        );
        t.insert("webhook_retry_base_ms".into(), (s.webhook_retry_base_ms as i64).into());
        t.insert("webhook_max_attempts".into(), i64::from(s.webhook_max_attempts).into());
        t.insert("sql_memory_mib".into(), (s.sql_memory_mib as i64).into());
        t.insert("sql_concurrency".into(), i64::from(s.sql_concurrency).into());
        if let Some(b) = &s.boundary_resource {
            t.insert("boundary_resource".into(), b.clone().into());
        }
        if let Some(c) = &s.commitment_text {
            t.insert("commitment_text".into(), c.clone().into());
        }
        t.insert("site_name".into(), s.site_name.clone().into());
        t.insert("site_name_en".into(), s.site_name_en.clone().into());
        if let Some(l) = &s.logo_url {
            t.insert("logo_url".into(), l.clone().into());
        }
        t.insert("primary_color".into(), s.primary_color.clone().into());
        if let Some(d) = &s.template_dir {
            t.insert("template_dir".into(), d.display().to_string().into());
        }
        let list = |v: &[String]| toml::Value::Array(v.iter().map(|d| d.clone().into()).collect());
        t.insert("trusted_proxies".into(), list(&s.trusted_proxies));
        if s.metrics_token.is_some() {
            t.insert("metrics_token".into(), "<redacted>".into());
        }
        if let Some(a) = s.metrics_addr {
            t.insert("metrics_addr".into(), a.to_string().into());
        }
        t.insert("webhook_allow_cidrs".into(), list(&s.webhook_allow_cidrs));
        t.insert("login_max_failures".into(), i64::from(s.login_max_failures).into());
        t.insert("login_max_failures_per_client".into(), i64::from(s.login_max_failures_per_client).into());
        t.insert("login_max_failures_per_user".into(), i64::from(s.login_max_failures_per_user).into());
        t.insert("login_window_minutes".into(), i64::from(s.login_window_minutes).into());
        t.insert("password_hash_concurrency".into(), (s.password_hash_concurrency as i64).into());
        t.insert("password_queue_timeout_ms".into(), (s.password_queue_timeout_ms as i64).into());
        t.insert("max_decompressed_bytes".into(), (s.max_decompressed_bytes as i64).into());
        t.insert("max_decompression_ratio".into(), (s.max_decompression_ratio as i64).into());
        if let Some(n) = &s.node_name {
            t.insert("node_name".into(), n.clone().into());
        }
        t.insert("ingest_lease_secs".into(), (s.ingest_lease_secs as i64).into());
        t.insert("shutdown_grace_secs".into(), (s.shutdown_grace_secs as i64).into());
        t.insert("ticket_sla_days".into(), i64::from(s.ticket_sla_days).into());
        t.insert("ticket_autoclose_days".into(), i64::from(s.ticket_autoclose_days).into());
        t.insert("verify_daily_quota".into(), i64::from(s.verify_daily_quota).into());
        t.insert("verify_max_batch".into(), i64::from(s.verify_max_batch).into());
        t.insert("verify_user_daily_quota".into(), i64::from(s.verify_user_daily_quota).into());
        t.insert("verify_per_second".into(), i64::from(s.verify_per_second).into());
        t.insert("license_verify_per_minute".into(), i64::from(s.license_verify_per_minute).into());
        if s.license_receipt_key.is_some() {
            t.insert("license_receipt_key".into(), "<redacted>".into());
        }
        t.insert("totp_required_for_admins".into(), s.totp_required_for_admins.into());
        if let Ok(toml::Value::Table(mut o)) = toml::Value::try_from(&s.oidc) {
            if let Some(toml::Value::Table(ps)) = o.get_mut("providers") {
                for (_, p) in ps.iter_mut() {
                    if let Some(t) = p.as_table_mut().filter(|t| t.contains_key("client_secret")) {
                        t.insert("client_secret".into(), "<redacted>".into());
                    }
                }
            }
            t.insert("oidc".into(), toml::Value::Table(o));
        }
        toml::to_string(&t).unwrap_or_default()
    }

    /// Theming and template overrides of the web pages.
    pub fn portal_config(&self) -> citydata_portal::PortalConfig {
        let s = &self.settings;
        citydata_portal::PortalConfig {
            site_name: s.site_name.clone(),
            site_name_en: s.site_name_en.clone(),
            logo_url: s.logo_url.clone(),
            primary_color: s.primary_color.clone(),
            template_dir: s.template_dir.clone(),
            secret: self.secret_key.expose().as_bytes().to_vec(),
            cookie_secure: self.cookie_secure(),
        }
    }

    /// This node's name in ingest leases: `node_name`, else an id kept in `data_dir/node-id`
    /// (created once), so that a restarted node recognizes its own leftovers.
    /// The key signing license receipts: `license_receipt_key`, else `data_dir/receipt_key`
    /// (made at first start, mode 0600).
    pub fn receipt_key(&self) -> std::io::Result<citydata_core::licenses::receipt::ReceiptKey> {
        use citydata_core::licenses::receipt::ReceiptKey;
        if let Some(k) = self.settings.license_receipt_key.as_ref().filter(|k| !k.expose().trim().is_empty()) {
            return ReceiptKey::parse_hex(k.expose()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "license_receipt_key must be 64 hex digits")
            });
        }
        std::fs::create_dir_all(&self.data_dir)?;
        ReceiptKey::load_or_create(&self.data_dir.join("receipt_key"))
    }

    pub fn node_id(&self) -> std::io::Result<String> {
        if let Some(n) = self.settings.node_name.as_ref().filter(|n| !n.trim().is_empty()) {
            return Ok(n.trim().to_string());
        }
        let path = self.data_dir.join("node-id");
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Ok(_) | Err(_) => {
                let id = format!("node-{}", uuid::Uuid::new_v4());
                std::fs::create_dir_all(&self.data_dir)?;
                std::fs::write(&path, &id)?;
                Ok(id)
            }
        }
    }

    /// `trusted_proxies`, parsed (checked by `resolve`).
    pub fn trusted_proxies(&self) -> Vec<citydata_core::net::IpNet> {
        citydata_core::net::parse_cidrs(&self.settings.trusted_proxies).unwrap_or_default()
    }

    /// `webhook_allow_cidrs`, parsed (checked by `resolve`).
    pub fn webhook_allow(&self) -> Vec<citydata_core::net::IpNet> {
        citydata_core::net::parse_cidrs(&self.settings.webhook_allow_cidrs).unwrap_or_default()
    }

    pub fn cookie_secure(&self) -> bool {
        self.settings.public_base_url.as_deref().is_some_and(|u| u.starts_with("https://"))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:<redacted>@host/db`.
pub fn redact_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return url.to_string() };
    let rest = &url[scheme_end..];
    let Some(at) = rest.find('@') else { return url.to_string() };
    let creds = &rest[..at];
    match creds.find(':') {
        Some(colon) => format!("{}{}:<redacted>{}", &url[..scheme_end], &creds[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

impl ResolvedSettings {
    /// The lake these settings name: a local directory, or `s3://` with `lake_s3`'s options.
    /// The server and every CLI command open it here, so all use the same storage options.
    pub fn open_lake(&self) -> anyhow::Result<citydata_lake::table::Lake> {
        use anyhow::Context;
        let options = if self.lake_url.contains("://") && !self.lake_url.starts_with("file://") {
            self.settings.lake_s3.storage_options()
        } else {
            Default::default()
        };
        citydata_lake::table::Lake::with_storage_options(&self.lake_url, options)
            .with_context(|| format!("cannot use the lake at {}", self.lake_url))
    }

    /// The working-day calendar of the response-time clock (dates were checked by `resolve`).
    pub fn calendar(&self) -> citydata_domain::calendar::WorkCalendar {
        let p = |v: &[String]| citydata_domain::calendar::WorkCalendar::parse_dates(v).unwrap_or_default();
        citydata_domain::calendar::WorkCalendar::new(p(&self.settings.holidays), p(&self.settings.makeup_workdays))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url_password("postgres://u:p%40ss@h:5432/db"), "postgres://u:<redacted>@h:5432/db");
        assert_eq!(redact_url_password("sqlite:///x/y.db"), "sqlite:///x/y.db");
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
    }

    #[test]
    fn layers_file_then_flags_and_resolves() {
        let dir = tempfile_dir();
        let cfg = dir.join("c.toml");
        std::fs::write(
            &cfg,
            format!("listen = \"127.0.0.1:9999\"\ndata_dir = \"{}\"\nsession_ttl_hours = 3\n", dir.display()),
        )
        .unwrap();
        let s = Settings::load(
            Some(&cfg),
            &Overrides { listen: Some("127.0.0.1:7777".parse().unwrap()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(s.listen.port(), 7777, "flags beat the file");
        assert_eq!(s.session_ttl_hours, 3, "the file beats defaults");
        let r = s.resolve().unwrap();
        assert!(r.database_url.starts_with("sqlite://"));
        let secret = std::fs::read_to_string(dir.join("secret_key")).unwrap();
        assert_eq!(secret, r.secret_key.expose());
        assert!(!r.to_redacted_toml().contains(&secret));
        std::fs::write(
            &cfg,
            format!(
                "data_dir = \"{}\"\nholidays = [\"2025-10-01\"]\nmakeup_workdays = [\"2025-09-28\"]\n",
                dir.display()
            ),
        )
        .unwrap();
        let cal = Settings::load(Some(&cfg), &Overrides::default()).unwrap().resolve().unwrap().calendar();
        assert!(!cal.is_workday(chrono::NaiveDate::from_ymd_opt(2025, 10, 1).unwrap()));
        assert!(cal.is_workday(chrono::NaiveDate::from_ymd_opt(2025, 9, 28).unwrap()));
        std::fs::write(&cfg, format!("data_dir = \"{}\"\nholidays = [\"10/1\"]\n", dir.display())).unwrap();
        let e = Settings::load(Some(&cfg), &Overrides::default()).unwrap().resolve().unwrap_err().to_string();
        assert!(e.contains("holidays"), "{e}");
        std::fs::write(&cfg, "listen = 5\n").unwrap();
        let e = Settings::load(Some(&cfg), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("listen"), "{e}");
        std::fs::write(&cfg, "no_such_key = 1\n").unwrap();
        assert!(Settings::load(Some(&cfg), &Overrides::default()).is_err());
        assert!(matches!(
            Settings::load(Some(&dir.join("missing.toml")), &Overrides::default()),
            Err(SettingsError::MissingFile(_))
        ));
    }

    #[test]
    fn an_s3_lake_loads_from_the_file_and_hides_its_secret() {
        let dir = tempfile_dir();
        let cfg = dir.join("s3.toml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir = \"{}\"\nlake_url = \"s3://city-lake/prod\"\n[lake_s3]\nendpoint = \"http://10.0.0.9:9000\"\naccess_key_id = \"ak\"\nsecret_access_key = \"sk-do-not-show\"\nallow_http = true\n",
                dir.display()
            ),
        )
        .unwrap();
        let r = Settings::load(Some(&cfg), &Overrides::default()).unwrap().resolve().unwrap();
        let o = r.settings.lake_s3.storage_options();
        assert_eq!((o["aws_endpoint"].as_str(), o["aws_allow_http"].as_str()), ("http://10.0.0.9:9000", "true"));
        let lake = r.open_lake().unwrap();
        assert!(lake.is_remote());
        let shown = r.to_redacted_toml();
        assert!(shown.contains("http://10.0.0.9:9000") && !shown.contains("sk-do-not-show"), "{shown}");
        std::fs::write(&cfg, "[lake_s3]\nendpoit = \"x\"\n").unwrap();
        let e = Settings::load(Some(&cfg), &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("endpoit"), "a misspelt key is refused: {e}");
    }

    #[test]
    fn quality_settings_load_from_the_file() {
        let dir = tempfile_dir();
        let cfg = dir.join("q.toml");
        std::fs::write(&cfg, "ticket_sla_days = 3\n[quality_weights]\ncompleteness = 50\naccuracy = 0\n").unwrap();
        let s = Settings::load(Some(&cfg), &Overrides::default()).unwrap();
        assert_eq!(s.ticket_sla_days, 3);
        assert_eq!(s.ticket_autoclose_days, 14, "the default");
        assert_eq!(s.quality_weights.completeness, 50.0);
        assert_eq!(s.quality_weights.accuracy, 0.0);
        assert_eq!(s.quality_weights.validity, 25.0, "unset weights keep their defaults");
        std::fs::write(&cfg, "[quality_weights]\nfreshness = 1\n").unwrap();
        assert!(Settings::load(Some(&cfg), &Overrides::default()).is_err(), "unknown weights are refused");
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("citydata-settings-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
