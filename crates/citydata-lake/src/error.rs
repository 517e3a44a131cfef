/// What went wrong in the lake. `Input` is the caller's file: its message names the line and
/// column where it can and is safe to show; the others are server-side.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("{message}")]
    Input { code: &'static str, message: String, line: Option<u64>, column: Option<String> },
    /// The ingest was refused as a whole (policy `reject` with invalid rows).
    #[error("{0}")]
    Rejected(String),
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

impl LakeError {
    pub fn input(code: &'static str, message: impl Into<String>) -> Self {
        Self::Input { code, message: message.into(), line: None, column: None }
    }
    pub fn at_line(code: &'static str, line: u64, message: impl Into<String>) -> Self {
        Self::Input { code, message: message.into(), line: Some(line), column: None }
    }
}

pub type Result<T> = std::result::Result<T, LakeError>;
