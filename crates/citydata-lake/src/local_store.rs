//! The lake's store for `file://` tables: object_store's `LocalFileSystem`, except that small
//! reads are done on the calling task.
//!
//! `LocalFileSystem` hands every read to tokio's blocking pool (open, stat and read in
//! `spawn_blocking`, and a ranged `get` a second time to read the bytes). A key lookup reads a
//! footer, a bloom filter per row group and a few pages: about 140 small reads, each waiting
//! for a pool thread to wake and for the answer to come back (session 15 measured 94 opens,
//! 136 preads and 679 futex calls per lookup, and 25 ms of which only 9.5 ms was CPU). A
//! read of a few hundred kilobytes from the page cache takes microseconds, far less than the
//! hand-over, so reads up to [`INLINE_READ_LIMIT`] are done in place; larger ones (whole-file
//! scans, big column chunks) still go to the pool so a worker thread is never held for long.
//!
//! No file handle is kept between reads: a vacuum or an erasure that deletes a file must make
//! it unreadable at once.

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use std::fs::{File, Metadata};
use std::io::ErrorKind;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Reads up to this many bytes are done on the calling task.
pub const INLINE_READ_LIMIT: u64 = 1 << 20;

static INLINE_READS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many reads this process did in place (for tests: proof that tables use this store).
pub fn inline_reads() -> u64 {
    INLINE_READS.load(std::sync::atomic::Ordering::Relaxed)
}

fn counted() {
    INLINE_READS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[derive(Debug)]
pub struct InlineLocalStore {
    inner: LocalFileSystem,
}

impl InlineLocalStore {
    pub fn new() -> Self {
        Self { inner: LocalFileSystem::new() }
    }

    fn open(&self, location: &Path) -> object_store::Result<(File, Metadata, std::path::PathBuf)> {
        let path = self.inner.path_to_filesystem(location)?;
        let file = File::open(&path).map_err(|e| open_error(e, &path))?;
        let meta = a_file(file.metadata(), &path)?;
        Ok((file, meta, path))
    }
}

/// The metadata of a regular file; a directory is "not found", as `LocalFileSystem` has it.
fn a_file(meta: std::io::Result<Metadata>, path: &std::path::Path) -> object_store::Result<Metadata> {
    let meta = meta.map_err(|e| open_error(e, path))?;
    if meta.is_dir() {
        return Err(object_store::Error::NotFound {
            path: path.display().to_string(),
            source: Box::new(std::io::Error::new(ErrorKind::NotFound, "is a directory")),
        });
    }
    Ok(meta)
}

impl Default for InlineLocalStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for InlineLocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InlineLocalStore({})", self.inner)
    }
}

fn open_error(e: std::io::Error, path: &std::path::Path) -> object_store::Error {
    match e.kind() {
        ErrorKind::NotFound => object_store::Error::NotFound { path: path.display().to_string(), source: Box::new(e) },
        _ => generic(e),
    }
}

fn generic(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(e) }
}

/// The same metadata (and ETag scheme: inode, mtime, size) `LocalFileSystem` reports.
fn object_meta(m: &Metadata, location: Path) -> ObjectMeta {
    use std::os::unix::fs::MetadataExt;
    let modified = m.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let mtime = modified.duration_since(std::time::SystemTime::UNIX_EPOCH).unwrap_or_default().as_micros();
    ObjectMeta {
        location,
        last_modified: modified.into(),
        size: m.len(),
        e_tag: Some(format!("{:x}-{mtime:x}-{:x}", m.ino(), m.len())),
        version: None,
    }
}

fn read_at(file: &File, path: &std::path::Path, range: Range<u64>, size: u64) -> object_store::Result<Bytes> {
    if range.start > range.end || range.end > size {
        return Err(generic(std::io::Error::new(
            ErrorKind::InvalidInput,
            format!("range {range:?} is outside {} ({size} bytes)", path.display()),
        )));
    }
    let mut buf = vec![0u8; (range.end - range.start) as usize];
    file.read_exact_at(&mut buf, range.start).map_err(generic)?;
    Ok(buf.into())
}

#[async_trait::async_trait]
impl ObjectStore for InlineLocalStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        // Only plain reads are done in place; anything with a condition keeps the original path.
        if options.if_match.is_some()
            || options.if_none_match.is_some()
            || options.if_modified_since.is_some()
            || options.if_unmodified_since.is_some()
            || options.version.is_some()
        {
            return self.inner.get_opts(location, options).await;
        }
        if options.head {
            let path = self.inner.path_to_filesystem(location)?;
            let meta = object_meta(&a_file(std::fs::metadata(&path), &path)?, location.clone());
            return Ok(GetResult {
                payload: GetResultPayload::Stream(Box::pin(futures::stream::empty())),
                attributes: Default::default(),
                range: 0..0,
                meta,
            });
        }
        let (file, m, path) = self.open(location)?;
        let meta = object_meta(&m, location.clone());
        let range = match &options.range {
            Some(r) => r.as_range(meta.size).map_err(|e| generic(std::io::Error::new(ErrorKind::InvalidInput, e)))?,
            None => 0..meta.size,
        };
        if range.end - range.start > INLINE_READ_LIMIT {
            // A long read: the file is read in chunks on the blocking pool by whoever consumes it.
            return Ok(GetResult {
                payload: GetResultPayload::File(file, path),
                attributes: Default::default(),
                range,
                meta,
            });
        }
        let bytes = read_at(&file, &path, range.clone(), meta.size)?;
        counted();
        let stream = futures::stream::once(async move { Ok(bytes) });
        Ok(GetResult {
            payload: GetResultPayload::Stream(Box::pin(stream)),
            attributes: Default::default(),
            range,
            meta,
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        let total: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        if total > INLINE_READ_LIMIT {
            return self.inner.get_ranges(location, ranges).await;
        }
        let (file, m, path) = self.open(location)?;
        counted();
        ranges.iter().map(|r| read_at(&file, &path, r.clone(), m.len())).collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// delta-rs' store factory for `file://` tables: [`InlineLocalStore`] rooted at `/`, the
/// table's path as the prefix (what delta-rs' default factory does with `LocalFileSystem`).
#[derive(Debug, Default)]
pub(crate) struct InlineLocalFactory;

impl deltalake::logstore::ObjectStoreFactory for InlineLocalFactory {
    fn parse_url_opts(
        &self,
        url: &url::Url,
        _config: &deltalake::logstore::StorageConfig,
    ) -> deltalake::DeltaResult<(deltalake::logstore::ObjectStoreRef, Path)> {
        let path = url.to_file_path().map_err(|_| deltalake::DeltaTableError::InvalidTableLocation(url.to_string()))?;
        let prefix = Path::from_absolute_path(&path)?;
        Ok((Arc::new(InlineLocalStore::new()), prefix))
    }
}

/// Makes [`InlineLocalFactory`] the store of `file://` tables (once per process, before the
/// first table is opened).
pub(crate) fn register_local() {
    let url = url::Url::parse("file://").expect("a scheme URL");
    deltalake::logstore::object_store_factories().insert(url, Arc::new(InlineLocalFactory));
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn reads_match_the_local_file_system_and_deleted_files_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &data).unwrap();
        let ours = InlineLocalStore::new();
        let theirs = LocalFileSystem::new();
        let loc = Path::from_absolute_path(&file).unwrap();
        for r in [0..10u64, 5..100_000, 1_000_000..3_000_000, 2_999_999..3_000_000] {
            assert_eq!(
                ours.get_range(&loc, r.clone()).await.unwrap(),
                theirs.get_range(&loc, r.clone()).await.unwrap()
            );
        }
        let rs = [0..4u64, 100..200, 2_000_000..2_000_010];
        assert_eq!(ours.get_ranges(&loc, &rs).await.unwrap(), theirs.get_ranges(&loc, &rs).await.unwrap());
        let big = std::iter::once(0..2_000_000u64).collect::<Vec<_>>();
        assert_eq!(ours.get_ranges(&loc, &big).await.unwrap(), theirs.get_ranges(&loc, &big).await.unwrap());
        assert_eq!(ours.get(&loc).await.unwrap().bytes().await.unwrap().as_ref(), &data[..]);
        assert_eq!(ours.head(&loc).await.unwrap(), theirs.head(&loc).await.unwrap());
        let suffix = GetOptions { range: Some(object_store::GetRange::Suffix(8)), ..Default::default() };
        let got = ours.get_opts(&loc, suffix).await.unwrap();
        assert_eq!(got.range, 2_999_992..3_000_000);
        assert_eq!(got.bytes().await.unwrap().as_ref(), &data[2_999_992..]);
        // Out of range is an error, not a short read.
        let past_the_end = std::iter::once(2_999_999..3_000_001u64).collect::<Vec<_>>();
        assert!(ours.get_ranges(&loc, &past_the_end).await.is_err());
        // A deleted file is not found at once (no handle is kept).
        std::fs::remove_file(&file).unwrap();
        assert!(matches!(ours.get_range(&loc, 0..10).await, Err(object_store::Error::NotFound { .. })));
        assert!(matches!(ours.head(&loc).await, Err(object_store::Error::NotFound { .. })));
    }
}
