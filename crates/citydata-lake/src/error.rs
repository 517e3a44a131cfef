/// What went wrong in the lake. `Input` is the caller's file: its message names the line and
/// column where it can and is safe to show; the version variants name what the caller asked;
/// the engine variants (`Delta`, `DataFusion`, `Arrow`, `Parquet`, `Io`, `Other`) carry the
/// engine's own text, which belongs in the log only: classify them with
/// [`LakeError::storage_kind`] before answering a client.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("{message}")]
    Input { code: &'static str, message: String, line: Option<u64>, column: Option<String> },
    /// The ingest was refused as a whole (policy `reject` with invalid rows).
    #[error("{0}")]
    Rejected(String),
    /// `version` is not a table version number (negative).
    #[error("invalid table version {0}")]
    InvalidVersion(i64),
    /// The version asked for does not exist: versions `earliest..=latest` do (`latest` is
    /// `None` while the table has no version).
    #[error("no table version {asked}")]
    VersionNotFound { asked: i64, earliest: i64, latest: Option<i64> },
    /// The version was erased (its files and log are gone); versions from `erased_before` on remain.
    #[error("table version {asked} was erased")]
    VersionErased { asked: i64, erased_before: i64 },
    #[error("delta: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("datafusion: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// What kind of storage failure an engine error is, for a stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// A data or log file of the table is missing or damaged (`table_unreadable`).
    Unreadable,
    /// The disk or the bucket quota is full (`storage_full`).
    Full,
    /// The object store did not answer (`storage_unavailable`, retry later).
    Unavailable,
    /// Another writer committed to the table first and the commit could not be reconciled
    /// (`write_conflict`): nothing was written, retry.
    Conflict,
}

impl LakeError {
    pub fn input(code: &'static str, message: impl Into<String>) -> Self {
        Self::Input { code, message: message.into(), line: None, column: None }
    }
    pub fn at_line(code: &'static str, line: u64, message: impl Into<String>) -> Self {
        Self::Input { code, message: message.into(), line: Some(line), column: None }
    }

    /// `true` for a version that does not exist (for callers that must tell it apart).
    pub fn is_version_not_found(&self) -> bool {
        matches!(self, Self::VersionNotFound { .. })
    }

    /// `true` for a version that existed but was erased.
    pub fn is_version_erased(&self) -> bool {
        matches!(self, Self::VersionErased { .. })
    }

    /// Is this an engine failure of the storage (as opposed to a bug or the caller's input)?
    /// Decided on the error's kind where the engine exposes one, else on its text (the engines
    /// wrap `std::io` and `object_store` errors as strings).
    pub fn storage_kind(&self) -> Option<StorageKind> {
        let text = match self {
            Self::Input { .. }
            | Self::Rejected(_)
            | Self::InvalidVersion(_)
            | Self::VersionNotFound { .. }
            | Self::VersionErased { .. } => return None,
            Self::Io(e) => match e.kind() {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                    return Some(StorageKind::Full);
                }
                std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => {
                    return Some(StorageKind::Unreadable);
                }
                _ => e.to_string(),
            },
            other => other.to_string(),
        };
        classify_text(&text.to_lowercase())
    }
}

fn classify_text(t: &str) -> Option<StorageKind> {
    // delta-rs: "Commit failed: a concurrent transactions added new data", "... deleted data
    // read by this transaction", "Version mismatch", "version already exists" (retries spent).
    const CONFLICT: [&str; 3] = ["a concurrent transaction", "version already exists", "commit failed"];
    if CONFLICT.iter().any(|k| t.contains(k)) {
        return Some(StorageKind::Conflict);
    }
    const FULL: [&str; 4] = ["no space left", "storage full", "disk quota", "quota exceeded"];
    const UNAVAILABLE: [&str; 8] = [
        "connection refused",
        "connection reset",
        "timed out",
        "timeout",
        "dns error",
        "service unavailable",
        "slow down",
        "error sending request",
    ];
    const UNREADABLE: [&str; 9] = [
        "not found",
        "no such file",
        "notfound",
        "corrupt",
        "invalid parquet",
        "parquet error",
        "unexpected end of file",
        "eof",
        "failed to read delta log",
    ];
    if FULL.iter().any(|k| t.contains(k)) {
        Some(StorageKind::Full)
    } else if UNAVAILABLE.iter().any(|k| t.contains(k)) {
        Some(StorageKind::Unavailable)
    } else if UNREADABLE.iter().any(|k| t.contains(k)) {
        Some(StorageKind::Unreadable)
    } else {
        None
    }
}

pub type Result<T> = std::result::Result<T, LakeError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_are_classified() {
        let full = LakeError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(full.storage_kind(), Some(StorageKind::Full));
        let gone = LakeError::Other("Object at location /x/part-0.parquet not found".into());
        assert_eq!(gone.storage_kind(), Some(StorageKind::Unreadable));
        let down = LakeError::Other("Generic S3 error: error sending request for url".into());
        assert_eq!(down.storage_kind(), Some(StorageKind::Unavailable));
        assert!(LakeError::VersionNotFound { asked: 9, earliest: 0, latest: Some(2) }.is_version_not_found());
        assert_eq!(LakeError::InvalidVersion(-1).storage_kind(), None);
        let race =
            LakeError::Other("Transaction failed: Commit failed: a concurrent transactions added new data".into());
        assert_eq!(race.storage_kind(), Some(StorageKind::Conflict));
    }
}
