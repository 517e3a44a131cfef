//! 文件分发: the bytes of files published with resources, content-addressed by SHA-256 under
//! `files/sha256/<2 hex>/<sha256>` in the lake's object store (local directory or S3, the same
//! `object_store` the Delta tables use), and the ZIP inspection an upload passes first.
//!
//! A blob is written whole or not at all: `put_file` streams a spooled upload through a
//! multipart upload, which the store makes visible only at `finish` (a local store renames a
//! temporary file). Reads stream, with an optional byte range.

use crate::error::{LakeError, Result};
use crate::limits::{DecompressLimits, bomb_error, bomb_message};
use crate::table::Lake;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use std::io::{Read, Seek};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Chunk size of uploads to the store (S3 parts must be at least 5 MiB but the last).
const PART: usize = 8 * 1024 * 1024;

/// The content-addressed file store under the lake's root.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

fn other(e: impl std::fmt::Display) -> LakeError {
    LakeError::Other(format!("file store: {e}"))
}

fn path(sha256: &str) -> Result<Path> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(LakeError::Other(format!("not a sha256: {sha256}")));
    }
    Ok(Path::from(format!("sha256/{}/{sha256}", &sha256[..2])))
}

impl Lake {
    /// The file store beside the tables (`<root>/files/`).
    pub fn blobs(&self) -> Result<Blobs> {
        let url = self.root().join("files/").map_err(other)?;
        if url.scheme() == "file"
            && let Ok(p) = url.to_file_path()
        {
            std::fs::create_dir_all(p)?;
        }
        let store = deltalake::logstore::store_for(&url, self.storage_options())?;
        Ok(Blobs { store })
    }
}

impl Blobs {
    /// Store the local file `local` as the blob `sha256` (the caller computed the hash while
    /// spooling). Streams in parts; nothing is visible before the last part is written.
    pub async fn put_file(&self, sha256: &str, local: &std::path::Path) -> Result<()> {
        let path = path(sha256)?;
        let upload = self.store.put_multipart(&path).await.map_err(other)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut f = tokio::fs::File::open(local).await?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e.into());
                }
            };
            if let Err(e) = w.wait_for_capacity(2).await {
                return Err(other(e));
            }
            w.write(&buf[..n]);
        }
        w.finish().await.map_err(other)?;
        Ok(())
    }

    /// The blob's bytes, `range` (start..end, end exclusive) or whole, as a stream.
    pub async fn get(
        &self,
        sha256: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>> {
        let opts = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let got = self.store.get_opts(&path(sha256)?, opts).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                LakeError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "file content missing"))
            }
            e => other(e),
        })?;
        Ok(got.into_stream().map(|r| r.map_err(std::io::Error::other)).boxed())
    }

    pub async fn exists(&self, sha256: &str) -> Result<bool> {
        match self.store.head(&path(sha256)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(other(e)),
        }
    }

    pub async fn delete(&self, sha256: &str) -> Result<()> {
        match self.store.delete(&path(sha256)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(other(e)),
        }
    }
}

/// The member names of a ZIP archive, after checking that it does not expand past `limits`:
/// the sizes its directory declares first (cheap), then every member decompressed and
/// counted (declared sizes can lie). A damaged archive is `bad_zip`; a bomb
/// `decompressed_too_large`.
pub fn zip_members<R: Read + Seek>(mut r: R, limits: DecompressLimits) -> Result<Vec<String>> {
    let bad = |e: &dyn std::fmt::Display| {
        LakeError::input("bad_zip", format!("不是有效的 ZIP 压缩包 / not a valid ZIP archive: {e}"))
    };
    let compressed = r.seek(std::io::SeekFrom::End(0))?.max(1);
    r.seek(std::io::SeekFrom::Start(0))?;
    let mut archive = zip::ZipArchive::new(r).map_err(|e| bad(&e))?;
    let mut declared = 0u64;
    let mut names = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let f = archive.by_index_raw(i).map_err(|e| bad(&e))?;
        declared = declared.saturating_add(f.size());
        names.push(f.name().map_err(|e| bad(&e))?.to_string());
    }
    let bomb = |e: std::io::Error| bomb_error(bomb_message(&e).unwrap_or_default());
    limits.check(declared, compressed).map_err(bomb)?;
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).map_err(|e| bad(&e))?;
        loop {
            let n = f.read(&mut buf).map_err(|e| bad(&e))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            limits.check(total, compressed).map_err(bomb)?;
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (n, data) in members {
            w.start_file(*n, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn members_are_listed_and_bombs_refused() {
        let z = zip_of(&[("a.shp", b"x"), ("a.dbf", b"y")]);
        let names = zip_members(Cursor::new(z), DecompressLimits::default()).unwrap();
        assert_eq!(names, vec!["a.shp", "a.dbf"]);
        // 64 MiB of zeros compress to ~64 KiB: past a 1 MiB cap and past the ratio.
        let zeros = vec![0u8; 64 << 20];
        let z = zip_of(&[("zeros.csv", &zeros)]);
        let small = DecompressLimits { max_bytes: 1 << 20, max_ratio: 200 };
        let e = zip_members(Cursor::new(z.clone()), small).unwrap_err();
        assert!(matches!(e, LakeError::Input { code: "decompressed_too_large", .. }), "{e:?}");
        let e = zip_members(Cursor::new(z), DecompressLimits::default()).unwrap_err();
        assert!(matches!(e, LakeError::Input { code: "decompressed_too_large", .. }), "{e:?}");
        let e = zip_members(Cursor::new(b"PK\x03\x04garbage".to_vec()), DecompressLimits::default()).unwrap_err();
        assert!(matches!(e, LakeError::Input { code: "bad_zip", .. }), "{e:?}");
    }

    #[tokio::test]
    async fn blobs_roundtrip_with_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
        let blobs = lake.blobs().unwrap();
        let sha = "ab".repeat(32);
        let src = dir.path().join("src");
        std::fs::write(&src, b"hello, files").unwrap();
        assert!(!blobs.exists(&sha).await.unwrap());
        blobs.put_file(&sha, &src).await.unwrap();
        assert!(blobs.exists(&sha).await.unwrap());
        let read = |r| {
            let blobs = blobs.clone();
            let sha = sha.clone();
            async move {
                let s = blobs.get(&sha, r).await.unwrap();
                let parts: Vec<Bytes> = s.map(|b| b.unwrap()).collect().await;
                parts.concat()
            }
        };
        assert_eq!(read(None).await, b"hello, files");
        assert_eq!(read(Some(7..12)).await, b"files");
        blobs.delete(&sha).await.unwrap();
        assert!(!blobs.exists(&sha).await.unwrap());
        assert!(blobs.get("XYZ", None).await.is_err());
    }
}
