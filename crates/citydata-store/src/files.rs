//! 文件分发: the metadata of files published with a resource. The bytes live content-addressed
//! (SHA-256) in the lake's object store; a row names one version of one file name.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One version of a resource's file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    pub id: Uuid,
    pub resource_id: Uuid,
    pub name: String,
    /// 1 for the first upload of `name`, then one more per upload of the same name.
    pub version: i32,
    /// Lower-case hex SHA-256 of the content: the object's address and the ETag.
    pub sha256: String,
    pub size: i64,
    /// `citydata_domain::files::FileKind` code, found in the content.
    pub kind: String,
    pub description: Option<String>,
    /// The provider says the file holds no personal information (脱敏/去标识化).
    pub deidentified: bool,
    /// The uploader's user id.
    pub uploaded_by: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait FileStore: Send + Sync {
    /// Insert `f` as the next version of its name (its `version` is ignored); returns the
    /// version given.
    async fn insert_file(&self, f: &FileRecord) -> Result<i32>;
    /// A resource's files, every version: by name, newest version first.
    async fn list_files(&self, resource_id: Uuid) -> Result<Vec<FileRecord>>;
    async fn get_file(&self, resource_id: Uuid, id: Uuid) -> Result<Option<FileRecord>>;
    /// `true` when a row was removed.
    async fn delete_file(&self, resource_id: Uuid, id: Uuid) -> Result<bool>;
    /// How many file rows (of any resource) name this content.
    async fn count_blob_refs(&self, sha256: &str) -> Result<i64>;
}
