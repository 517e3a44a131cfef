//! Caps on decompressed input, so that a small upload cannot expand into gigabytes (a "zip
//! bomb"): gzip streams are counted while they are decompressed, and an XLSX workbook (a zip)
//! has every member decompressed and counted *before* calamine opens it — the sizes a zip's
//! directory declares are not trusted.
//!
//! Two caps apply: an absolute one (`max_bytes`) and a ratio to the compressed bytes read so far
//! (`max_ratio`), checked once the output passes [`RATIO_FLOOR`] (small files may compress
//! very well without harm).

use crate::error::{LakeError, Result};
use std::io::{BufRead, BufReader, Read, Seek};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Below this many decompressed bytes the ratio is not checked.
pub const RATIO_FLOOR: u64 = 8 * 1024 * 1024;

/// How far an upload may expand when decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecompressLimits {
    /// Most decompressed bytes of one upload (gzip) or of all members of one workbook (XLSX).
    pub max_bytes: u64,
    /// Most decompressed bytes per compressed byte.
    pub max_ratio: u64,
}

impl Default for DecompressLimits {
    fn default() -> Self {
        Self { max_bytes: 4 * 1024 * 1024 * 1024, max_ratio: 200 }
    }
}

/// The error inside an `io::Error` (kind `FileTooLarge`) when a cap is passed.
#[derive(Debug)]
pub struct DecompressionBomb(pub String);

impl std::fmt::Display for DecompressionBomb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecompressionBomb {}

/// The message when `e` is a passed decompression cap.
pub fn bomb_message(e: &std::io::Error) -> Option<String> {
    e.get_ref().and_then(|i| i.downcast_ref::<DecompressionBomb>()).map(|b| b.0.clone())
}

/// The caller's error for a passed cap (`decompressed_too_large`).
pub fn bomb_error(message: String) -> LakeError {
    LakeError::input("decompressed_too_large", message)
}

impl DecompressLimits {
    /// `Err` once `out` decompressed bytes from `compressed` compressed ones pass a cap.
    pub(crate) fn check(&self, out: u64, compressed: u64) -> std::io::Result<()> {
        let msg = if out > self.max_bytes {
            Some(format!(
                "解压后超过 {} 字节的上限 / the decompressed content exceeds the limit of {} bytes",
                self.max_bytes, self.max_bytes
            ))
        } else if out > RATIO_FLOOR && out > compressed.max(1).saturating_mul(self.max_ratio) {
            Some(format!(
                "压缩比超过 {} 倍的上限（疑似压缩炸弹）/ the file expands more than {} times when decompressed (a decompression bomb?)",
                self.max_ratio, self.max_ratio
            ))
        } else {
            None
        };
        match msg {
            Some(m) => Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, DecompressionBomb(m))),
            None => Ok(()),
        }
    }
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Decompressed output, checked against the caps as it is read.
struct Capped<R> {
    inner: R,
    out: u64,
    compressed: Arc<AtomicU64>,
    limits: DecompressLimits,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        self.limits.check(self.out, self.compressed.load(Ordering::Relaxed))?;
        Ok(n)
    }
}

/// Wrap `inner` so that gzip input (detected by its magic bytes) is decompressed within
/// `limits`; other input passes unchanged.
pub fn gunzip_limited<R: Read + Send + 'static>(inner: R, limits: DecompressLimits) -> Result<Box<dyn BufRead + Send>> {
    let count = Arc::new(AtomicU64::new(0));
    let mut br = BufReader::with_capacity(256 * 1024, Counting { inner, count: count.clone() });
    let head = br.fill_buf().map_err(crate::decode::input_io_error)?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let decoder = flate2::bufread::MultiGzDecoder::new(br);
        Ok(Box::new(BufReader::with_capacity(256 * 1024, Capped { inner: decoder, out: 0, compressed: count, limits })))
    } else {
        Ok(Box::new(br))
    }
}

/// Decompress every member of the zip in `r` (without keeping it) and refuse the archive when
/// the total passes `limits`, counted against the archive's size. Returns the total.
pub fn check_zip<R: Read + Seek>(r: R, limits: DecompressLimits) -> Result<u64> {
    check_zip_as(r, limits, |e| {
        LakeError::input("bad_xlsx", format!("不是有效的 xlsx 工作簿 / not a valid xlsx workbook: {e}"))
    })
}

/// [`check_zip`] for an archive of another kind: `bad` words the error of an unreadable one.
pub fn check_zip_as<R: Read + Seek>(mut r: R, limits: DecompressLimits, bad: fn(String) -> LakeError) -> Result<u64> {
    let compressed = r.seek(std::io::SeekFrom::End(0)).map_err(crate::decode::input_io_error)?.max(1);
    r.seek(std::io::SeekFrom::Start(0)).map_err(crate::decode::input_io_error)?;
    let mut archive = zip::ZipArchive::new(r).map_err(|e| bad(e.to_string()))?;
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        // The declared size first (cheap), then what the member really expands to.
        if let Err(e) = limits.check(total.saturating_add(f.size()), compressed) {
            return Err(bomb_error(bomb_message(&e).unwrap_or_default()));
        }
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(bad(e.to_string())),
            };
            total += n as u64;
            if let Err(e) = limits.check(total, compressed) {
                return Err(bomb_error(bomb_message(&e).unwrap_or_default()));
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_within_limits_passes_and_a_bomb_is_refused() {
        let text = b"a,b\n1,2\n".repeat(1000);
        let mut out = String::new();
        gunzip_limited(std::io::Cursor::new(gz(&text)), DecompressLimits::default())
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.len(), text.len());
        let bomb = gz(&vec![b'0'; 32 * 1024 * 1024]);
        let mut r = gunzip_limited(std::io::Cursor::new(bomb), DecompressLimits::default()).unwrap();
        let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        assert!(bomb_message(&e).unwrap().contains("压缩比"));
        let small = DecompressLimits { max_bytes: 1000, max_ratio: 1000 };
        let mut r = gunzip_limited(std::io::Cursor::new(gz(&text)), small).unwrap();
        let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        assert!(bomb_message(&e).unwrap().contains("上限"));
    }
}
