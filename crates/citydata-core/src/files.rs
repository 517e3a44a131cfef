//! 文件分发 (file distributions): files of any allowed format published with a resource.
//!
//! - **Upload** (`upload_file`): the provider department's stewards only. Validations (the
//!   name), authorization, then the body is spooled to a temporary file while it is hashed
//!   (SHA-256) and counted against `max_file_bytes` — memory stays bounded whatever the size;
//!   the content's type is found from its first bytes (and a ZIP's member names, after the
//!   bomb check; a JSON file is parsed whole) and must match the name's extension; then the
//!   blob is written content-addressed to the lake's object store, and only then the row that
//!   names it (a new version when the name exists). A refusal at any step writes nothing.
//! - **Reads** (`list_files`, `download_file`): through the gate (`Action::Export`): a caller
//!   the gate refuses gets the refusal (audited by the gate) and not even the list; among the
//!   files, `citydata_domain::files::file_readable` decides which one a caller may have (the
//!   provider every one; others a file of a resource with personal items only when it is
//!   marked de-identified). Every download is audited with the bytes it sends.
//! - **Delete** (`delete_file`): stewards; the blob goes when no row names it any more.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use citydata_domain::FieldError;
use citydata_domain::audit::Outcome;
use citydata_domain::files::{FileKind, FileName, Sniffed, classify, file_readable, sniff};
use citydata_domain::policy::Action;
use citydata_domain::principal::Principal;
use citydata_domain::resource::Resource;
use citydata_store::FileRecord;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use uuid::Uuid;

/// Bytes sniffed for the type.
const HEAD: usize = 8192;

/// What an upload says about its file besides the bytes.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileUploadInput {
    /// The file name, with its extension (e.g. `国土空间规划分区说明.pdf`).
    pub name: String,
    pub description: Option<String>,
    /// The provider states the file holds no personal information (脱敏/去标识化): then other
    /// departments and the public may download it under the resource's rules even when the
    /// resource has personal items.
    #[serde(default)]
    pub deidentified: bool,
}

/// One version of a file, as callers see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileView {
    pub id: Uuid,
    pub name: String,
    pub version: i32,
    /// `true` for the newest version of its name.
    pub latest: bool,
    /// The content's type as found in it: `pdf`, `doc`, `xls`, `docx`, `xlsx`, `zip`,
    /// `shapefile`, `png`, `jpeg`, `geojson`, `json`, `csv`.
    pub kind: String,
    /// The format's label (`PDF`, `GeoJSON`, ...).
    pub format: String,
    pub media_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content (also the download's ETag).
    pub sha256: String,
    pub description: Option<String>,
    pub deidentified: bool,
    pub created_at: DateTime<Utc>,
    /// Where to download it (a path under this server).
    pub download_url: String,
}

fn kind_of(r: &FileRecord) -> Result<FileKind, CoreError> {
    FileKind::parse(&r.kind)
        .ok_or_else(|| CoreError::Internal(format!("resource_files.kind: unknown kind {} of file {}", r.kind, r.id)))
}

impl FileView {
    fn new(r: &FileRecord, latest: bool, slug: &str) -> Result<Self, CoreError> {
        let kind = kind_of(r)?;
        Ok(Self {
            id: r.id,
            name: r.name.clone(),
            version: r.version,
            latest,
            kind: kind.code().into(),
            format: kind.label().into(),
            media_type: kind.media_type().into(),
            size: r.size,
            sha256: r.sha256.clone(),
            description: r.description.clone(),
            deidentified: r.deidentified,
            created_at: r.created_at,
            download_url: format!("/api/v1/resources/{slug}/files/{}", r.id),
        })
    }
}

/// A byte range as a `Range` header asks for it (one range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` (inclusive).
    Bounded(u64, u64),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// One range of `Range: bytes=…`; `None` for anything else (several ranges, other units:
    /// the whole file is sent, as RFC 9110 allows).
    pub fn parse(header: &str) -> Option<Self> {
        let spec = header.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        match (a.is_empty(), b.is_empty()) {
            (true, false) => b.parse().ok().map(Self::Suffix),
            (false, true) => a.parse().ok().map(Self::From),
            (false, false) => {
                let (a, b) = (a.parse().ok()?, b.parse().ok()?);
                (a <= b).then_some(Self::Bounded(a, b))
            }
            (true, true) => None,
        }
    }

    /// The inclusive byte span within a file of `size` bytes; `None` when unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        match self {
            _ if size == 0 => None,
            Self::Bounded(a, b) if a < size => Some((a, b.min(size - 1))),
            Self::From(a) if a < size => Some((a, size - 1)),
            Self::Suffix(n) if n > 0 => Some((size.saturating_sub(n), size - 1)),
            _ => None,
        }
    }
}

/// What a download answers.
pub enum Download {
    /// `If-None-Match` matched: 304.
    NotModified(FileView),
    /// The range lies outside the file: 416.
    Unsatisfiable(FileView),
    /// The bytes: the whole file, or `range` (inclusive) of it.
    Content {
        file: FileView,
        kind: FileKind,
        range: Option<(u64, u64)>,
        body: BoxStream<'static, std::io::Result<Bytes>>,
    },
}

/// Conditions of a download request.
#[derive(Debug, Clone, Default)]
pub struct DownloadRequest {
    pub range: Option<ByteRange>,
    /// The `If-None-Match` header's text.
    pub if_none_match: Option<String>,
    /// The `If-Range` header's text: a range applies only while it names the current ETag.
    pub if_range: Option<String>,
}

/// The quoted ETag of a file.
pub fn etag(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

fn matches_etag(header: &str, sha256: &str) -> bool {
    let tag = etag(sha256);
    header.split(',').map(str::trim).any(|t| t == "*" || t == tag || t.strip_prefix("W/") == Some(&tag))
}

/// A spooled upload: the temporary file, its hash, size and first bytes.
struct Spooled {
    file: tempfile::NamedTempFile,
    sha256: String,
    size: u64,
    head: Vec<u8>,
}

fn spool(mut body: Box<dyn Read + Send>, dir: &std::path::Path, max: u64) -> Result<Spooled, CoreError> {
    std::fs::create_dir_all(dir).map_err(|e| CoreError::Internal(e.to_string()))?;
    let mut file = tempfile::Builder::new()
        .prefix("file-upload-")
        .tempfile_in(dir)
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(HEAD);
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let too_large =
        || CoreError::TooLarge(format!("文件超过 {max} 字节的上限 / the file exceeds the limit of {max} bytes"));
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => return Err(too_large()),
            Err(e) => {
                return Err(CoreError::Input {
                    code: "unreadable",
                    message: format!("上传中断或无法读取 / the upload could not be read: {e}"),
                    line: None,
                    column: None,
                });
            }
        };
        size += n as u64;
        if size > max {
            return Err(too_large());
        }
        let chunk = &buf[..n];
        if head.len() < HEAD {
            head.extend_from_slice(&chunk[..chunk.len().min(HEAD - head.len())]);
        }
        hasher.update(chunk);
        file.write_all(chunk).map_err(|e| {
            tracing::error!(error = %e, "spooling a file upload failed");
            CoreError::Storage {
                code: "storage_full",
                message: "存储空间已满，请联系平台管理员 / the storage is full: contact the platform administrator"
                    .into(),
                retry_after_secs: None,
            }
        })?;
    }
    file.flush().map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(Spooled { file, sha256: hex::encode(hasher.finalize()), size, head })
}

fn refused(e: FieldError) -> CoreError {
    CoreError::Input { code: e.code, message: e.message, line: None, column: None }
}

/// The kind of a spooled file, checked as the module doc says.
fn inspect(
    name: &FileName,
    s: &Spooled,
    limits: citydata_lake::limits::DecompressLimits,
) -> Result<FileKind, CoreError> {
    let sniffed = sniff(&s.head);
    let members = match sniffed {
        Sniffed::Zip => {
            let f = std::fs::File::open(s.file.path()).map_err(|e| CoreError::Internal(e.to_string()))?;
            Some(citydata_lake::files::zip_members(std::io::BufReader::new(f), limits)?)
        }
        _ => None,
    };
    let kind = classify(name, sniffed, members.as_deref()).map_err(refused)?;
    if matches!(kind, FileKind::Json | FileKind::GeoJson) {
        let f = std::fs::File::open(s.file.path()).map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut r = std::io::BufReader::new(f);
        // Skip a UTF-8 byte order mark.
        if s.head.starts_with(b"\xef\xbb\xbf") {
            let mut bom = [0u8; 3];
            r.read_exact(&mut bom).map_err(|e| CoreError::Internal(e.to_string()))?;
        }
        serde_json::from_reader::<_, serde::de::IgnoredAny>(r).map_err(|e| CoreError::Input {
            code: "bad_json",
            message: format!("JSON 无效（第 {} 行）/ invalid JSON at line {}: {e}", e.line(), e.line()),
            line: Some(e.line() as u64),
            column: None,
        })?;
    }
    Ok(kind)
}

impl Core {
    fn file_views(records: &[FileRecord], slug: &str) -> Result<Vec<FileView>, CoreError> {
        let mut seen = std::collections::HashSet::new();
        // Records come by name, newest version first: the first of each name is the latest.
        records.iter().map(|r| FileView::new(r, seen.insert(r.name.clone()), slug)).collect()
    }

    fn steward_of(p: &Principal, resource: &Resource) -> Result<(), CoreError> {
        if p.can_steward(&resource.content.provider) {
            Ok(())
        } else {
            Err(CoreError::Forbidden(
                "只有提供方部门的数据管理员可以管理资源的文件 / only the provider department's stewards manage a resource's files"
                    .into(),
            ))
        }
    }

    /// Publish a file with the resource `key` (see the module doc).
    pub async fn upload_file(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        key: &str,
        input: FileUploadInput,
        body: Box<dyn Read + Send>,
    ) -> Result<FileView, CoreError> {
        // 1. Validations.
        let name = FileName::parse(&input.name)?;
        let description = input.description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty());
        if description.as_ref().is_some_and(|d| d.chars().count() > 1000) {
            return Err(FieldError::new(
                "description",
                "too_long",
                "说明不能超过 1000 个字符 / at most 1,000 characters",
            )
            .into());
        }
        // 2. Authorization.
        let resource = self.get_resource(Some(p), key).await?;
        Self::steward_of(p, &resource)?;
        // 3. Spool, hash and inspect (blocking IO off the runtime).
        let dir = self.spool_dir.clone().unwrap_or_else(std::env::temp_dir);
        let (max, limits) = (self.config.max_file_bytes, self.config.decompress);
        let checked_name = name.clone();
        let (spooled, kind) = tokio::task::spawn_blocking(move || {
            let s = spool(body, &dir, max)?;
            let kind = inspect(&checked_name, &s, limits)?;
            Ok::<_, CoreError>((s, kind))
        })
        .await
        .map_err(|e| CoreError::Internal(e.to_string()))??;
        // 4. The blob, then the row that names it.
        let blobs = self.lake()?.blobs()?;
        blobs.put_file(&spooled.sha256, spooled.file.path()).await?;
        let mut record = FileRecord {
            id: Uuid::now_v7(),
            resource_id: resource.id,
            name: name.to_string(),
            version: 0,
            sha256: spooled.sha256.clone(),
            size: spooled.size as i64,
            kind: kind.code().into(),
            description,
            deidentified: input.deidentified,
            uploaded_by: p.user_id.to_string(),
            created_at: Utc::now(),
        };
        record.version = self.store.insert_file(&record).await?;
        // A delete of the same content that counted no row before ours may have removed the
        // blob meanwhile: put it back while the spooled copy is still here.
        if !blobs.exists(&spooled.sha256).await? {
            blobs.put_file(&spooled.sha256, spooled.file.path()).await?;
        }
        drop(spooled);
        self.record(
            meta,
            Actor::Principal(p),
            "file.upload",
            Some(format!("resource:{}", resource.content.code)),
            Outcome::Success,
            serde_json::json!({"file_id": record.id, "name": record.name, "version": record.version,
                "bytes": record.size, "sha256": record.sha256, "kind": record.kind, "deidentified": record.deidentified}),
        )
        .await?;
        FileView::new(&record, true, resource.content.slug.as_str())
    }

    /// The files of `key` the caller may download, every version (by name, newest first). A
    /// caller the gate refuses gets the refusal, not the list.
    pub async fn list_files(
        &self,
        meta: &RequestMeta,
        p: Option<&Principal>,
        key: &str,
    ) -> Result<Vec<FileView>, CoreError> {
        let g = self.gate(meta, p, key, Action::Export, "file.list").await?;
        let records = self.store.list_files(g.resource.id).await?;
        let readable: Vec<FileRecord> =
            records.into_iter().filter(|r| file_readable(&g.allow, &g.resource, r.deidentified)).collect();
        Self::file_views(&readable, g.resource.content.slug.as_str())
    }

    /// Every version of every file of `key`, for the stewards who manage them (names and
    /// sizes; the bytes still go through the gate on download).
    pub async fn manage_files(&self, p: &Principal, key: &str) -> Result<Vec<FileView>, CoreError> {
        let resource = self.get_resource(Some(p), key).await?;
        Self::steward_of(p, &resource)?;
        let records = self.store.list_files(resource.id).await?;
        Self::file_views(&records, resource.content.slug.as_str())
    }

    /// The files of a resource for its pages and catalog entries: like `list_files`, but a
    /// caller the gate refuses gets an empty list (nothing audited: no file is read).
    pub async fn visible_files(&self, p: Option<&Principal>, resource: &Resource) -> Result<Vec<FileView>, CoreError> {
        let allow = match self.decision(p, resource, Action::Export).await? {
            citydata_domain::policy::Decision::Allow(a) => a,
            citydata_domain::policy::Decision::Deny(_) => return Ok(vec![]),
        };
        let records = self.store.list_files(resource.id).await?;
        let readable: Vec<FileRecord> =
            records.into_iter().filter(|r| file_readable(&allow, resource, r.deidentified)).collect();
        Self::file_views(&readable, resource.content.slug.as_str())
    }

    /// A file's bytes through the gate, audited with the bytes sent.
    pub async fn download_file(
        &self,
        meta: &RequestMeta,
        p: Option<&Principal>,
        key: &str,
        file_id: Uuid,
        req: DownloadRequest,
    ) -> Result<Download, CoreError> {
        let g = self.gate(meta, p, key, Action::Export, "file.download").await?;
        let not_found = || CoreError::NotFound("文件不存在 / no such file".into());
        let record = self.store.get_file(g.resource.id, file_id).await?.ok_or_else(not_found)?;
        let target = Some(format!("resource:{}", g.resource.content.code));
        let actor = || match p {
            Some(p) => Actor::Principal(p),
            None => Actor::Anonymous,
        };
        if !file_readable(&g.allow, &g.resource, record.deidentified) {
            self.record(
                meta,
                actor(),
                "file.download",
                target,
                Outcome::Denied,
                serde_json::json!({"file_id": file_id, "decision": "file_not_released"}),
            )
            .await?;
            return Err(CoreError::Forbidden(
                "该文件仅限提供方部门下载：资源含个人信息且文件未标注为已脱敏，或您的授权限定了数据范围 / this file is for the provider only: the resource has personal items and the file is not marked de-identified, or your grant limits the rows"
                    .into(),
            ));
        }
        let latest = self
            .store
            .list_files(g.resource.id)
            .await?
            .iter()
            .find(|r| r.name == record.name)
            .is_none_or(|r| r.id == record.id);
        let view = FileView::new(&record, latest, g.resource.content.slug.as_str())?;
        if req.if_none_match.as_deref().is_some_and(|h| matches_etag(h, &record.sha256)) {
            return Ok(Download::NotModified(view));
        }
        let size = record.size as u64;
        let range_applies = req.if_range.as_deref().is_none_or(|h| h.trim() == etag(&record.sha256));
        let range = match req.range.filter(|_| range_applies) {
            Some(r) => match r.resolve(size) {
                Some(span) => Some(span),
                None => return Ok(Download::Unsatisfiable(view)),
            },
            None => None,
        };
        let kind = kind_of(&record)?;
        let body = self.lake()?.blobs()?.get(&record.sha256, range.map(|(a, b)| a..b + 1)).await.map_err(|e| {
            tracing::error!(error = %e, file = %record.id, "reading a file's content failed");
            CoreError::Storage {
                code: "table_unreadable",
                message: format!(
                    "文件“{}”的内容无法读取，请联系平台管理员 / the content of file {} cannot be read: contact the platform administrator",
                    record.name, record.name
                ),
                retry_after_secs: None,
            }
        })?;
        let bytes = range.map_or(size, |(a, b)| b - a + 1);
        self.record(
            meta,
            actor(),
            "file.download",
            target,
            Outcome::Success,
            serde_json::json!({"file_id": record.id, "name": record.name, "version": record.version,
                "bytes": bytes, "range": range.map(|(a, b)| format!("{a}-{b}")), "grant": g.allow.grant_id}),
        )
        .await?;
        Ok(Download::Content { file: view, kind, range, body })
    }

    /// Remove one version of a file (stewards of the provider department).
    pub async fn delete_file(
        &self,
        meta: &RequestMeta,
        p: &Principal,
        key: &str,
        file_id: Uuid,
    ) -> Result<(), CoreError> {
        let resource = self.get_resource(Some(p), key).await?;
        Self::steward_of(p, &resource)?;
        let not_found = || CoreError::NotFound("文件不存在 / no such file".into());
        let record = self.store.get_file(resource.id, file_id).await?.ok_or_else(not_found)?;
        if !self.store.delete_file(resource.id, file_id).await? {
            return Err(not_found());
        }
        if self.store.count_blob_refs(&record.sha256).await? == 0 {
            self.lake()?.blobs()?.delete(&record.sha256).await?;
        }
        self.record(
            meta,
            Actor::Principal(p),
            "file.delete",
            Some(format!("resource:{}", resource.content.code)),
            Outcome::Success,
            serde_json::json!({"file_id": record.id, "name": record.name, "version": record.version, "sha256": record.sha256}),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_resolve() {
        assert_eq!(ByteRange::parse("bytes=0-9"), Some(ByteRange::Bounded(0, 9)));
        assert_eq!(ByteRange::parse("bytes=5-"), Some(ByteRange::From(5)));
        assert_eq!(ByteRange::parse("bytes=-3"), Some(ByteRange::Suffix(3)));
        for bad in ["bytes=9-1", "bytes=0-1,5-6", "items=0-1", "bytes=-", "bytes=a-b"] {
            assert_eq!(ByteRange::parse(bad), None, "{bad}");
        }
        assert_eq!(ByteRange::Bounded(2, 100).resolve(10), Some((2, 9)));
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some((7, 9)));
        assert_eq!(ByteRange::Suffix(30).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::From(10).resolve(10), None);
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert!(matches_etag("W/\"ab\", \"cd\"", "ab"));
        assert!(!matches_etag("\"abc\"", "ab"));
    }
}
