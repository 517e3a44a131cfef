//! Which files make up a table at a version, for copies taken while writers go on
//! (`citydata backup`). Delta files are never rewritten: a commit `N.json` and the data files
//! it names stay as they are, so copying the log up to a version `V` and the files those
//! commits (and the checkpoint they start from) reference gives the table at `V` whatever
//! commits arrive meanwhile.

use crate::{LakeError, Result};
use deltalake::DeltaTable;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The newest committed version of the table in `dir` (the largest `N` with a
/// `_delta_log/N.json`), `None` when no commit exists yet.
pub fn latest_committed_version(dir: &Path) -> Result<Option<i64>> {
    let log = dir.join("_delta_log");
    let rd = match std::fs::read_dir(&log) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut best = None;
    for e in rd {
        let name = e?.file_name().to_string_lossy().to_string();
        if let Some(n) = name.strip_suffix(".json").and_then(|s| s.parse::<i64>().ok()) {
            best = best.max(Some(n));
        }
    }
    Ok(best)
}

/// The version a log file belongs to: `00000000000000000003.json` → 3,
/// `00000000000000000010.checkpoint.parquet` → 10; `None` for temporary and other files.
pub fn log_file_version(name: &str) -> Option<i64> {
    let digits: String = name.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.len() != 20 || name.contains("tmp") {
        return None;
    }
    digits.parse().ok()
}

/// Every file, relative to the table directory `dir`, that version `version` of the table
/// needs, and every older file the log up to it still names (history, change feed):
/// `_delta_log` entries up to `version` (and `_last_checkpoint` when it points no further),
/// the data and change files named by those commits when they still exist, and the active
/// files of the snapshot at `version` (which also covers files known only from a checkpoint).
/// A file the snapshot needs but that is missing is an error.
pub async fn files_at_version(dir: &Path, version: i64) -> Result<Vec<PathBuf>> {
    let mut out: BTreeSet<PathBuf> = BTreeSet::new();
    let log = dir.join("_delta_log");
    for e in std::fs::read_dir(&log)? {
        let name = e?.file_name().to_string_lossy().to_string();
        if name == "_last_checkpoint" {
            let text = std::fs::read_to_string(log.join(&name))?;
            let points_to = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("version").and_then(|v| v.as_i64()));
            if points_to.is_some_and(|v| v <= version) {
                out.insert(PathBuf::from("_delta_log").join(&name));
            }
            continue;
        }
        let Some(v) = log_file_version(&name) else { continue };
        if v > version {
            continue;
        }
        out.insert(PathBuf::from("_delta_log").join(&name));
        if name.ends_with(".json") {
            let text = std::fs::read_to_string(log.join(&name))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let Ok(action) = serde_json::from_str::<serde_json::Value>(line) else { continue };
                for kind in ["add", "remove", "cdc"] {
                    if let Some(p) = action.get(kind).and_then(|a| a.get("path")).and_then(|p| p.as_str()) {
                        let rel = PathBuf::from(percent_decode(p));
                        // History files may be gone (vacuum); only the snapshot's must exist.
                        if is_relative_inside(&rel) && dir.join(&rel).is_file() {
                            out.insert(rel);
                        }
                    }
                }
            }
        }
    }
    let url = url::Url::from_directory_path(dir.canonicalize()?)
        .map_err(|_| LakeError::Other(format!("table path {}", dir.display())))?;
    let mut table = DeltaTable::try_from_url(url).await?;
    table.load_version(version as u64).await?;
    let root = dir.canonicalize()?;
    for uri in table.get_file_uris()? {
        // Local tables answer plain paths; object-store URLs are not local files.
        let path = match url::Url::parse(&uri) {
            Ok(u) if u.scheme() == "file" => {
                u.to_file_path().map_err(|_| LakeError::Other(format!("not a local file: {uri}")))?
            }
            Ok(_) if !uri.starts_with('/') => return Err(LakeError::Other(format!("not a local file: {uri}"))),
            _ => PathBuf::from(&uri),
        };
        let path = path.canonicalize().unwrap_or(path);
        let rel = path
            .strip_prefix(&root)
            .map_err(|_| LakeError::Other(format!("{} is outside the table {}", path.display(), root.display())))?
            .to_path_buf();
        if !dir.join(&rel).is_file() {
            return Err(LakeError::Other(format!(
                "version {version} of {} needs {} which is missing",
                dir.display(),
                rel.display()
            )));
        }
        out.insert(rel);
    }
    Ok(out.into_iter().collect())
}

fn is_relative_inside(p: &Path) -> bool {
    p.components().all(|c| matches!(c, std::path::Component::Normal(_)))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_and_paths() {
        assert_eq!(log_file_version("00000000000000000003.json"), Some(3));
        assert_eq!(log_file_version("00000000000000000010.checkpoint.parquet"), Some(10));
        assert_eq!(log_file_version("_commit_ab.json.tmp"), None);
        assert_eq!(log_file_version("00000000000000000004.json.tmp"), None);
        assert_eq!(percent_decode("a%20b%3Dc"), "a b=c");
        assert_eq!(percent_decode("100%"), "100%");
        assert!(!is_relative_inside(Path::new("../x")));
        assert!(!is_relative_inside(Path::new("/x")));
        assert!(is_relative_inside(Path::new("_change_data/x.parquet")));
    }
}
