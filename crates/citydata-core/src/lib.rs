//! citydata-core: the use cases. Each public method of [`Core`] runs the same labelled steps:
//! validate the input into domain types, authorize the principal, write through the store,
//! and append an audit entry for every mutation (success, denial or failure).
//!
//! HTTP, HTML and CLI surfaces call these methods and nothing below them. This crate names no
//! concrete store backend and no web framework.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod audit;
pub mod audit_seal;
pub mod auth;
pub mod catalog;
pub mod catalog_cache;
pub mod catalog_io;
pub mod chart_cache;
pub mod compaction;
pub mod csv_safe;
pub mod demo;
mod error;
pub mod evaluation;
pub mod exports;
mod exports_geojson;
pub mod feedback;
pub mod files;
pub mod gate;
pub mod grants;
pub mod ingest;
pub mod ingest_lease;
pub mod iot;
pub mod lake_check;
pub mod licenses;
pub mod net;
pub mod oidc;
mod password;
pub mod quality;
mod ratelimit;
pub mod reads;
mod regions;
pub mod requests;
pub mod scopes;
pub mod service_accounts;
pub mod sessions;
pub mod sharing;
pub mod sources;
pub mod sql;
pub mod tokens;
pub mod totp;
pub mod verify;
mod webhook_guard;
pub mod webhooks;

pub use error::CoreError;

use chrono::Duration;
use citydata_search::CatalogIndex;
use citydata_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Facts about the request a use case runs for, recorded in the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client: Option<String>,
    /// The `User-Agent` (shown in the list of one's sessions).
    pub user_agent: Option<String>,
    /// Set once an audit entry has been appended for this request, so that the HTTP layer can
    /// audit the mutating requests that were refused before reaching a use case.
    pub audited: Arc<AtomicBool>,
}

impl RequestMeta {
    pub fn new(request_id: Option<String>, client: Option<String>) -> Self {
        Self { request_id, client, user_agent: None, audited: Arc::default() }
    }
    pub fn was_audited(&self) -> bool {
        self.audited.load(Ordering::SeqCst)
    }
}

/// Tunables of the use cases, filled from the server's settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// A session unused this long ends (`None`: no idle timeout).
    pub session_idle: Option<Duration>,
    /// Failed logins allowed per username and client within `login_window` before 429.
    pub login_max_failures: u32,
    /// Failed logins allowed from one client address, whatever the usernames.
    pub login_max_failures_per_client: u32,
    /// Failed logins allowed for one username, whatever the client addresses.
    pub login_max_failures_per_user: u32,
    pub login_window: Duration,
    /// Password hashes (argon2id) running at once; more wait for a slot.
    pub password_hash_concurrency: usize,
    /// How long a login waits for a hashing slot before 503 `busy`.
    pub password_queue_wait: std::time::Duration,
    /// How far uploads may expand when decompressed (gzip streams, XLSX workbooks).
    pub decompress: citydata_lake::limits::DecompressLimits,
    /// Largest file distribution (`POST /resources/{id}/files`), in bytes.
    pub max_file_bytes: u64,
    /// Internal address ranges webhooks may reach anyway (e.g. the government network).
    pub webhook_allow: Vec<net::IpNet>,
    /// The longest lifetime a new API token may have.
    pub token_max_days: u32,
    /// Key of the keyed pseudonyms (the server's secret).
    pub pseudonym_key: Vec<u8>,
    /// Working days, for the response-time clock of requests.
    pub calendar: citydata_domain::calendar::WorkCalendar,
    /// Working days a provider has to answer a request.
    pub response_days: u32,
    /// Wait before the first retry of a failed webhook delivery; doubled at each retry.
    pub webhook_retry_base: Duration,
    /// Attempts before a delivery is marked `failed`.
    pub webhook_max_attempts: u32,
    /// The security commitment (安全承诺书) public applicants accept.
    pub commitment_text: String,
    /// Memory one SQL statement may use, in bytes.
    pub sql_memory_limit: usize,
    /// SQL statements one user may run at once (on all nodes together).
    pub sql_concurrency: usize,
    /// The resource (code or slug) whose districts `within(item, '<code>')` resolves against.
    pub boundary_resource: Option<String>,
    /// This node's name in ingest leases (stable across restarts, so that a restarted node
    /// settles its own leftovers at once).
    pub node_id: String,
    /// How long an ingest's lease lasts; its node renews it every quarter of that. A running
    /// ingest whose lease ended is settled by any node.
    pub ingest_lease: std::time::Duration,
    /// The address users reach the server at (`public_base_url`): webhook payloads carry
    /// absolute links under it; unset, links stay paths.
    pub public_url: Option<String>,
    /// The quality score's weights per dimension.
    pub quality_weights: citydata_domain::quality::QualityWeights,
    /// Working days the provider has to answer a 纠错 ticket.
    pub ticket_sla_days: u32,
    /// Days after which a fixed ticket nobody confirmed closes.
    pub ticket_autoclose_days: u32,
    /// Verification grants' default quota and batch, and the per-user daily quota.
    pub verify: verify::VerifyLimits,
    /// License verification's limits and receipt key (电子证照核验).
    pub licenses: licenses::LicenseConfig,
    /// OpenID Connect providers and whether staff keep local passwords (统一身份认证).
    pub oidc: oidc::OidcSettings,
    /// Platform and department admins who sign in with a local password need a TOTP code.
    pub totp_required: bool,
}

/// The default 安全承诺书 shown to public applicants (configurable as `commitment_text`).
pub const DEFAULT_COMMITMENT: &str = "本人/本单位承诺：仅在申请所述用途和场景内使用所获数据；不向第三方提供、转让或公开原始数据；\
不尝试对脱敏数据进行重新识别；采取必要的安全措施保护数据；授权到期或被撤销后删除所获数据；\
违反承诺的，依法承担相应责任。/ I undertake to use the data only for the stated purpose and \
scenario, not to pass on or publish it, not to re-identify masked data, to keep it secure, to \
delete it when the grant ends, and to bear legal responsibility for any breach.";

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::hours(12),
            session_idle: None,
            login_max_failures: 10,
            login_max_failures_per_client: 30,
            login_max_failures_per_user: 100,
            login_window: Duration::minutes(15),
            password_hash_concurrency: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            password_queue_wait: std::time::Duration::from_secs(5),
            decompress: citydata_lake::limits::DecompressLimits::default(),
            max_file_bytes: 512 * 1024 * 1024,
            webhook_allow: vec![],
            token_max_days: 3650,
            pseudonym_key: b"citydata-default-pseudonym-key".to_vec(),
            calendar: citydata_domain::calendar::WorkCalendar::default(),
            response_days: 10,
            webhook_retry_base: Duration::seconds(30),
            webhook_max_attempts: 8,
            commitment_text: DEFAULT_COMMITMENT.to_string(),
            sql_memory_limit: 512 << 20,
            sql_concurrency: 2,
            boundary_resource: None,
            // A one-off process (the CLI): a name of its own, so that no server mistakes its
            // running ingests for leftovers of its own.
            node_id: format!("process-{}", uuid::Uuid::now_v7()),
            ingest_lease: std::time::Duration::from_secs(120),
            public_url: None,
            quality_weights: citydata_domain::quality::QualityWeights::default(),
            ticket_sla_days: 5,
            ticket_autoclose_days: 14,
            verify: verify::VerifyLimits::default(),
            licenses: licenses::LicenseConfig::default(),
            oidc: oidc::OidcSettings::default(),
            totp_required: false,
        }
    }
}

/// The application's use cases over one store.
#[derive(Clone)]
pub struct Core {
    store: Arc<dyn Store>,
    regions: regions::RegionsCache,
    /// Shared, not copied: every handler and middleware clones the state per request, and the
    /// configuration holds texts and calendars (a deep copy was ~10% of a metadata read's CPU).
    config: Arc<CoreConfig>,
    login_limiter: Arc<ratelimit::FailureLimiter>,
    /// Failed logins per client address (any username) and per username (any client).
    login_client_limiter: Arc<ratelimit::FailureLimiter>,
    login_user_limiter: Arc<ratelimit::FailureLimiter>,
    passwords: password::PasswordGate,
    /// Public self-registrations per client address.
    register_limiter: Arc<ratelimit::FailureLimiter>,
    search: Option<Arc<CatalogIndex>>,
    search_sync: Arc<tokio::sync::Mutex<()>>,
    lake: Option<Arc<citydata_lake::table::Lake>>,
    /// Where uploads that need random access (XLSX, Parquet, JSON) are spooled.
    spool_dir: Option<std::path::PathBuf>,
    /// One writer per table on this node: uploads to the same resource wait for each other
    /// instead of failing each other's Delta commit.
    table_writers: Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>>>,
    /// Woken when a webhook delivery is queued.
    webhook_wake: Arc<tokio::sync::Notify>,
    /// Woken when a source run is queued on this node.
    source_wake: Arc<tokio::sync::Notify>,
    /// Readers' feedback per client address.
    feedback_limiter: Arc<ratelimit::FailureLimiter>,
    /// Usage figures for the portal, with when they were counted.
    usage_cache: Timed<UsageMap>,
    /// Department names for labels, with when they were read.
    dept_names: Timed<std::collections::HashMap<String, String>>,
    /// Signs audit checkpoints (kept outside the database); `None`: no checkpoints.
    audit_key: Option<Arc<audit_seal::AuditKey>>,
    /// The public evaluation table per period, computed once a minute at most on this node
    /// (the lock also makes concurrent anonymous requests wait for one computation).
    public_evaluation: evaluation::PublicCache,
    /// Catalog records for metadata reads, current with the catalog change sequence.
    catalog_cache: Arc<catalog_cache::CatalogCache>,
    /// The portal's chart answers per table version.
    chart_cache: Arc<chart_cache::ChartCache>,
    /// The identity providers and their discovery documents on this node.
    oidc: Arc<oidc::Oidc>,
}

type UsageMap = std::collections::HashMap<String, feedback::Usage>;

/// A value cached on this node with the time it was computed.
type Timed<T> = Arc<std::sync::Mutex<Option<(std::time::Instant, T)>>>;

impl Core {
    pub fn new(store: Arc<dyn Store>, config: CoreConfig) -> Self {
        let login_limiter =
            Arc::new(ratelimit::FailureLimiter::new("login", config.login_max_failures, config.login_window));
        let register_limiter = Arc::new(ratelimit::FailureLimiter::new("register", 5, Duration::hours(1)));
        let login_client_limiter = Arc::new(ratelimit::FailureLimiter::new(
            "login-client",
            config.login_max_failures_per_client,
            config.login_window,
        ));
        let login_user_limiter = Arc::new(ratelimit::FailureLimiter::new(
            "login-user",
            config.login_max_failures_per_user,
            config.login_window,
        ));
        let passwords = password::PasswordGate::new(config.password_hash_concurrency, config.password_queue_wait);
        let oidc = oidc::runtime(config.oidc.clone());
        Self {
            oidc,
            store,
            regions: Arc::default(),
            config: Arc::new(config),
            login_limiter,
            login_client_limiter,
            login_user_limiter,
            passwords,
            register_limiter,
            search: None,
            search_sync: Arc::default(),
            lake: None,
            spool_dir: None,
            table_writers: Arc::default(),
            webhook_wake: Arc::default(),
            source_wake: Arc::default(),
            feedback_limiter: Arc::new(ratelimit::FailureLimiter::new("feedback", 20, Duration::hours(1))),
            usage_cache: Arc::default(),
            dept_names: Arc::default(),
            audit_key: None,
            public_evaluation: Arc::default(),
            catalog_cache: Arc::default(),
            chart_cache: Arc::default(),
        }
    }

    /// Sign audit checkpoints with `key` (every `CHECKPOINT_EVERY` entries, after a verify, at
    /// shutdown) and check them when verifying.
    pub fn with_audit_key(mut self, key: Arc<audit_seal::AuditKey>) -> Self {
        self.audit_key = Some(key);
        self
    }

    /// Keep resource data in `lake`; spool random-access uploads in `spool_dir`.
    pub fn with_lake(mut self, lake: citydata_lake::table::Lake, spool_dir: std::path::PathBuf) -> Self {
        self.lake = Some(Arc::new(lake));
        self.spool_dir = Some(spool_dir);
        self
    }

    pub fn lake(&self) -> Result<&Arc<citydata_lake::table::Lake>, CoreError> {
        self.lake.as_ref().ok_or_else(|| CoreError::Internal("no lake configured".into()))
    }

    /// Keep `index` in step with the catalog and answer searches from it.
    pub fn with_search(mut self, index: Arc<CatalogIndex>) -> Self {
        self.search = Some(index);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }
}
