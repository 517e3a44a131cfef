//! `Lake::check`: can a table be read as its current version says? The Delta log must load,
//! and every data file the current version references must exist, have the size the log
//! recorded, and carry a Parquet footer that decodes (magic bytes at both ends, metadata
//! parsable). What it finds is for the operator (`citydata lake check`): file names are
//! relative to the table, never shown to API clients.

use crate::error::Result;
use crate::table::Lake;
use object_store::ObjectStoreExt;
use serde::Serialize;
use uuid::Uuid;

/// What is wrong with a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The Delta log could not be read (a commit or checkpoint file missing or damaged).
    LogUnreadable,
    /// A data file of the current version is missing.
    FileMissing,
    /// A data file's size differs from the size the log recorded (truncated or replaced).
    SizeMismatch,
    /// A data file's Parquet footer does not decode.
    FooterUnreadable,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LogUnreadable => "log_unreadable",
            Self::FileMissing => "file_missing",
            Self::SizeMismatch => "size_mismatch",
            Self::FooterUnreadable => "footer_unreadable",
        }
    }
}

/// One problem: its kind, the file (relative to the table) when it concerns one, and a
/// short explanation.
#[derive(Debug, Clone, Serialize)]
pub struct TableProblem {
    pub kind: ProblemKind,
    pub file: Option<String>,
    pub detail: String,
}

/// The result of checking one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableCheck {
    /// The current version (`None`: no table yet, or the log did not load).
    pub version: Option<i64>,
    /// Data files the current version references.
    pub files: usize,
    pub problems: Vec<TableProblem>,
}

impl TableCheck {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

const MAGIC: &[u8; 4] = b"PAR1";

impl Lake {
    /// Check the table of resource `id` (see the module documentation). A table that was
    /// never written is fine (no version, no files). Errors only when the object store itself
    /// fails in a way that says nothing about the table (e.g. it cannot be reached).
    pub async fn check(&self, id: Uuid) -> Result<TableCheck> {
        let table = match self.open(self.table_url(id)?).await {
            Ok(t) => t,
            Err(e) => {
                if e.storage_kind() == Some(crate::StorageKind::Unavailable) {
                    return Err(e);
                }
                return Ok(TableCheck {
                    problems: vec![TableProblem {
                        kind: ProblemKind::LogUnreadable,
                        file: None,
                        detail: short(&e.to_string()),
                    }],
                    ..Default::default()
                });
            }
        };
        let Some(version) = table.version() else { return Ok(TableCheck::default()) };
        let snapshot = match table.snapshot() {
            Ok(s) => s,
            Err(e) => {
                return Ok(TableCheck {
                    version: Some(version as i64),
                    problems: vec![TableProblem {
                        kind: ProblemKind::LogUnreadable,
                        file: None,
                        detail: short(&e.to_string()),
                    }],
                    ..Default::default()
                });
            }
        };
        let files: Vec<(object_store::path::Path, i64)> =
            snapshot.log_data().iter().map(|f| (f.object_store_path(), f.size())).collect();
        let store = table.object_store();
        let mut check = TableCheck { version: Some(version as i64), files: files.len(), problems: vec![] };
        for (path, logged) in files {
            let name = path.to_string();
            let problem = |kind, detail: String| TableProblem { kind, file: Some(name.clone()), detail };
            let meta = match store.head(&path).await {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => {
                    check
                        .problems
                        .push(problem(ProblemKind::FileMissing, "文件不存在 / the file does not exist".into()));
                    continue;
                }
                Err(e) => return Err(crate::LakeError::Other(e.to_string())),
            };
            if i64::try_from(meta.size).ok() != Some(logged) {
                check.problems.push(problem(
                    ProblemKind::SizeMismatch,
                    format!(
                        "日志记录 {logged} 字节，实际 {} 字节 / the log says {logged} bytes, the file has {}",
                        meta.size, meta.size
                    ),
                ));
                continue;
            }
            if let Err(why) = footer(&*store, &path, meta.size).await {
                check.problems.push(problem(ProblemKind::FooterUnreadable, why));
            }
        }
        Ok(check)
    }
}

/// Read and decode the Parquet footer of the file at `path` of `size` bytes.
async fn footer(
    store: &dyn object_store::ObjectStore,
    path: &object_store::path::Path,
    size: u64,
) -> std::result::Result<(), String> {
    if size < 12 {
        return Err(format!("只有 {size} 字节，不是 Parquet 文件 / only {size} bytes: not a Parquet file"));
    }
    let read =
        |r: std::ops::Range<u64>| async move { store.get_range(path, r).await.map_err(|e| short(&e.to_string())) };
    let head = read(0..4).await?;
    let tail = read(size - 8..size).await?;
    if head.as_ref() != MAGIC || &tail[4..8] != MAGIC {
        return Err("缺少 Parquet 标记 PAR1 / the PAR1 magic bytes are missing".into());
    }
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if len + 12 > size {
        return Err(format!("页脚长度 {len} 超出文件 / the footer length {len} exceeds the file"));
    }
    let meta = read(size - 8 - len..size - 8).await?;
    parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&meta)
        .map(|_| ())
        .map_err(|e| format!("页脚无法解析 / the footer does not decode: {}", short(&e.to_string())))
}

/// The first line of an engine message, at most 200 characters (for the operator's report).
fn short(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}
