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
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// Stable snake_case code, as used in the API error envelope and audit details.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_failed",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy { .. } => "busy",
            Self::Input { code, .. } => code,
            Self::TooLarge(_) => "payload_too_large",
            Self::Denied(r) => r.code(),
            Self::Internal(_) => "internal",
        }
    }

    pub fn forbidden() -> Self {
        Self::Forbidden("没有执行此操作的权限 / you are not allowed to do this".into())
    }

    pub fn unauthenticated() -> Self {
        Self::Unauthenticated("需要登录或有效的 API 令牌 / authentication required".into())
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(format!("已存在：{what} / already exists: {what}")),
            StoreError::NotFound(what) => Self::NotFound(format!("不存在：{what} / not found: {what}")),
            StoreError::Corrupt(m) | StoreError::Backend(m) => Self::Internal(m),
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
            other => Self::Internal(other.to_string()),
        }
    }
}
