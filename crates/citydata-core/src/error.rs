use citydata_domain::ValidationErrors;
use citydata_store::StoreError;

/// Why a use case did not succeed. Messages are user-facing (zh-CN first, then English);
/// `Internal` carries detail for the log only.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// The caller's token lacks the scope or the resource this needs (403 `insufficient_scope`).
    #[error("{0}")]
    InsufficientScope(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts, retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The server is saturated (e.g. every password-hashing slot is busy): 503, retry later.
    #[error("server busy, retry after {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// A problem in an uploaded file: `code` is stable (`ragged_row`, `bad_encoding`, ...),
    /// `line` and `column` point at it when known.
    #[error("{message}")]
    Input { code: &'static str, message: String, line: Option<u64>, column: Option<String> },
    #[error("{0}")]
    TooLarge(String),
    /// The policy gate refused the read; the reason's code is stable (`grant_required`, ...).
    #[error("{}", .0.message())]
    Denied(citydata_domain::policy::DenyReason),
    /// What was asked for existed once and is no longer available to this caller (a table
    /// version outside the history window, or erased); the code is stable.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// A `version=` / `since_version=` that does not exist; the message names the version
    /// asked and the versions that exist (`version_not_found`, 404).
    #[error("{0}")]
    VersionNotFound(String),
    /// A version removed by an erasure (`version_erased`, 410).
    #[error("{0}")]
    VersionErased(String),
    /// The storage failed: `table_unreadable` (a file of the table is missing or damaged),
    /// `storage_full`, `storage_unavailable` (the lake; retry after `retry_after_secs`),
    /// `store_unavailable` (the metadata database; retry after `retry_after_secs`). The message
    /// names the resource at most, never a path; the engine's text went to the log.
    #[error("{message}")]
    Storage { code: &'static str, message: String, retry_after_secs: Option<u64> },
    /// A 纠错 ticket step out of order (409 `invalid_transition`); `state` is the current one.
    #[error("{message}")]
    InvalidTransition { state: &'static str, message: String },
    /// A verification quota is used up for today (429 `quota_exhausted`, `Retry-After`
    /// until `resets_at`).
    #[error("quota exhausted until {resets_at}")]
    QuotaExhausted { retry_after_secs: u64, resets_at: chrono::DateTime<chrono::Utc> },
    /// A second factor is needed or was wrong (401): `totp_required`, `totp_invalid`, or
    /// `totp_enrolment_required` with the new secret to add to an authenticator app.
    #[error("{message}")]
    SecondFactor { code: &'static str, message: String, enrol: Option<Box<crate::totp::TotpEnrolment>> },
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Retry-After` of `store_unavailable`: long enough for a database restart or failover to
/// begin answering, short enough that clients come back soon.
pub const STORE_RETRY_AFTER_SECS: u64 = 5;

impl CoreError {
    /// Stable snake_case code, as used in the API error envelope and audit details.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy { .. } => "busy",
            Self::Input { code, .. } => code,
            Self::TooLarge(_) => "payload_too_large",
            Self::Denied(r) => r.code(),
            Self::Gone { code, .. } => code,
            Self::VersionNotFound(_) => "version_not_found",
            Self::VersionErased(_) => "version_erased",
            Self::Storage { code, .. } => code,
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::QuotaExhausted { .. } => "quota_exhausted",
            Self::SecondFactor { code, .. } => code,
            Self::Internal(_) => "internal",
        }
    }

    /// The message a client may read (for records shown later, e.g. a failed ingest):
    /// internal detail is replaced by a generic sentence.
    pub fn client_message(&self) -> String {
        match self {
            Self::Internal(_) => "服务器内部错误 / internal server error".into(),
            other => other.to_string(),
        }
    }

    /// Name the resource in a storage error's message (`table_unreadable` and kin), for use
    /// cases that know which table they read: `lake_call().map_err(|e| CoreError::from(e).for_resource(code))`.
    pub fn for_resource(self, code: &str) -> Self {
        match self {
            Self::Storage { code: c, message, retry_after_secs } if c != "store_unavailable" => {
                let message = match message.split_once(" / ") {
                    Some((zh, en)) => format!("资源 {code}：{zh} / resource {code}: {en}"),
                    None => format!("资源 {code}：{message} / resource {code}"),
                };
                Self::Storage { code: c, message, retry_after_secs }
            }
            other => other,
        }
    }

    /// The metadata database cannot be reached (restarting, network, pool exhausted): 503
    /// `store_unavailable` with `Retry-After`.
    pub fn store_unavailable() -> Self {
        Self::Storage {
            code: "store_unavailable",
            message: "数据库暂时不可用，请稍后重试 / the database is temporarily unavailable: retry later".into(),
            retry_after_secs: Some(STORE_RETRY_AFTER_SECS),
        }
    }

    pub fn forbidden() -> Self {
        Self::Forbidden("没有执行此操作的权限 / you are not allowed to do this".into())
    }

    pub fn unauthenticated() -> Self {
        Self::Unauthenticated("需要登录或有效的 API 令牌 / authentication required".into())
    }
}

/// How a storage error names a table to clients: the resource's code and name (never a
/// path or the table's id).
pub fn table_label(r: &citydata_domain::resource::Resource) -> String {
    format!("{}（{}）", r.content.code, r.content.name)
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("已存在：{what} / already exists: {what}")),
            StoreError::NotFound(what) => Self::NotFound(format!("不存在：{what} / not found: {what}")),
            StoreError::Corrupt(m) => Self::Internal(m),
            StoreError::Backend(e) => Self::Internal(e.to_string()),
            StoreError::Unavailable(m) => {
                // The driver's text (host, SQLSTATE) goes to the log only.
                tracing::warn!(error = %m, "metadata store unavailable");
                Self::store_unavailable()
            }
        }
    }
}

impl From<ValidationErrors> for CoreError {
    fn from(e: ValidationErrors) -> Self {
        Self::Validation(e)
    }
}

impl From<citydata_domain::FieldError> for CoreError {
    fn from(e: citydata_domain::FieldError) -> Self {
        Self::Validation(e.into())
    }
}

impl From<citydata_lake::LakeError> for CoreError {
    fn from(e: citydata_lake::LakeError) -> Self {
        use citydata_lake::LakeError as L;
        match e {
            L::Input { code: "too_large", message, .. } => Self::TooLarge(message),
            L::Io(e) if citydata_lake::limits::bomb_message(&e).is_some() => Self::Input {
                code: "decompressed_too_large",
                message: citydata_lake::limits::bomb_message(&e).unwrap_or_default(),
                line: None,
                column: None,
            },
            L::Input { code, message, line, column } => Self::Input { code, message, line, column },
            L::Rejected(m) => Self::Input { code: "rejected", message: m, line: None, column: None },
            L::InvalidVersion(v) => Self::Validation(
                citydata_domain::FieldError::new(
                    "version",
                    "invalid_version",
                    format!("version 须为不小于 0 的整数，收到 {v} / version must be an integer ≥ 0, got {v}"),
                )
                .into(),
            ),
            L::VersionNotFound { asked, earliest, latest } => Self::VersionNotFound(match latest {
                Some(l) => format!(
                    "表版本 {asked} 不存在，现有版本 {earliest}–{l} / table version {asked} does not exist; versions {earliest} to {l} exist"
                ),
                None => format!(
                    "表版本 {asked} 不存在：此资源尚无数据 / table version {asked} does not exist: the resource has no data yet"
                ),
            }),
            L::VersionErased { asked, erased_before } => Self::VersionErased(format!(
                "表版本 {asked} 已被擦除，现有版本从 {erased_before} 起 / table version {asked} was erased; versions from {erased_before} on exist"
            )),
            other => {
                // The engine's text (paths, SQL, kernel messages) goes to the log only; the
                // request id is on the enclosing span.
                tracing::error!(error = %other, "lake error");
                match other.storage_kind() {
                    Some(citydata_lake::StorageKind::Full) => Self::Storage {
                        code: "storage_full",
                        message: "存储空间已满，请联系平台管理员 / the storage is full: contact the platform administrator"
                            .into(),
                        retry_after_secs: None,
                    },
                    Some(citydata_lake::StorageKind::Unavailable) => Self::Storage {
                        code: "storage_unavailable",
                        message: "存储暂时不可用，请稍后重试 / the storage is unavailable: retry later".into(),
                        retry_after_secs: Some(30),
                    },
                    Some(citydata_lake::StorageKind::Conflict) => Self::Storage {
                        code: "write_conflict",
                        message: "另一次写入同时提交到了此表，本次未写入任何数据，请重试 / another write to this table committed first and nothing was written: retry".into(),
                        retry_after_secs: Some(2),
                    },
                    Some(citydata_lake::StorageKind::Unreadable) => Self::Storage {
                        code: "table_unreadable",
                        message: "数据表的文件缺失或损坏，请联系数据提供部门 / a file of the table is missing or damaged: contact the provider"
                            .into(),
                        retry_after_secs: None,
                    },
                    None => Self::Internal(other.to_string()),
                }
            }
        }
    }
}
