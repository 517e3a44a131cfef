//! 审计检查点 (signed audit checkpoints): the part of the audit trail a database writer
//! cannot forge.
//!
//! The hash chain makes any edit visible to someone who does not recompute it; whoever can
//! write the database can. So the node signs checkpoints — (seq, head hash, time) with
//! HMAC-SHA256 under an [`AuditKey`] read from a file outside the database — every
//! [`CHECKPOINT_EVERY`] entries, after each successful verify, and at shutdown. Each checkpoint
//! is kept twice: in the store (`audit_checkpoints`) and appended to `audit-checkpoints.jsonl`
//! beside the key, so deleting checkpoint rows does not hide a truncation. Verification
//! checks every checkpoint's signature, then walks the chain requiring each checkpoint's hash
//! at its seq and a chain that reaches the newest checkpoint.
//!
//! What holds: without the key, rewriting entries up to a checkpoint, or removing entries up to
//! one, is reported. What does not: changes after the newest checkpoint that are consistently
//! re-hashed (at most `CHECKPOINT_EVERY - 1` entries, fewer after a verify), and an attacker
//! who holds the key file too — hence the key belongs on another volume or in an HSM.

use crate::CoreError;
use chrono::{SubsecRound, Utc};
use citydata_domain::audit::AuditCheckpoint;
use citydata_store::Store;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// A checkpoint is signed whenever an entry's seq is a multiple of this.
pub const CHECKPOINT_EVERY: i64 = 100;

/// The audit signing key and the checkpoint file beside it. `Debug` shows the paths only.
pub struct AuditKey {
    key: [u8; 32],
    key_file: PathBuf,
    checkpoint_file: PathBuf,
    append: std::sync::Mutex<()>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey").field("key_file", &self.key_file).field("key", &"<redacted>").finish()
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> CoreError {
    CoreError::Internal(format!("{what} {}: {e}", path.display()))
}

impl AuditKey {
    /// Read the key file, or create it (32 random bytes, mode 0600) when it does not exist.
    pub fn open_or_create(key_file: &Path) -> Result<Self, CoreError> {
        let key = match std::fs::read(key_file) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                CoreError::Internal(format!("audit key {} must hold exactly 32 bytes", key_file.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                if let Some(dir) = key_file.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
                }
                write_new_private(key_file, &key).map_err(|e| io_error("cannot create audit key", key_file, e))?;
                key
            }
            Err(e) => return Err(io_error("cannot read audit key", key_file, e)),
        };
        let checkpoint_file = key_file.with_file_name("audit-checkpoints.jsonl");
        Ok(Self { key, key_file: key_file.to_path_buf(), checkpoint_file, append: std::sync::Mutex::new(()) })
    }

    pub fn checkpoint_file(&self) -> &Path {
        &self.checkpoint_file
    }

    fn mac(&self, seq: i64, hash: &str, at: chrono::DateTime<Utc>) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(&AuditCheckpoint::message(seq, hash, at));
        m
    }

    /// A signed checkpoint of (seq, hash) now.
    pub fn sign(&self, seq: i64, hash: &str) -> AuditCheckpoint {
        let at = Utc::now().trunc_subsecs(6);
        let mac = hex::encode(self.mac(seq, hash, at).finalize().into_bytes());
        AuditCheckpoint { seq, hash: hash.to_string(), at, mac }
    }

    /// Does the checkpoint's signature hold under this key (constant-time comparison)?
    pub fn verify(&self, c: &AuditCheckpoint) -> bool {
        hex::decode(&c.mac).is_ok_and(|tag| self.mac(c.seq, &c.hash, c.at).verify_slice(&tag).is_ok())
    }

    fn append_file(&self, c: &AuditCheckpoint) -> Result<(), CoreError> {
        let _guard = self.append.lock().unwrap_or_else(|p| p.into_inner());
        let line = serde_json::to_string(c).map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.checkpoint_file)
            .map_err(|e| io_error("cannot open", &self.checkpoint_file, e))?;
        writeln!(f, "{line}")
            .and_then(|_| f.sync_data())
            .map_err(|e| io_error("cannot append to", &self.checkpoint_file, e))
    }

    /// The checkpoints in the file (a line that does not parse is reported as a forgery).
    fn read_file(&self) -> Result<Vec<AuditCheckpoint>, CoreError> {
        let f = match std::fs::File::open(&self.checkpoint_file) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_error("cannot read", &self.checkpoint_file, e)),
        };
        let mut out = Vec::new();
        for line in std::io::BufReader::new(f).lines() {
            let line = line.map_err(|e| io_error("cannot read", &self.checkpoint_file, e))?;
            if line.trim().is_empty() {
                continue;
            }
            out.push(serde_json::from_str(&line).unwrap_or(AuditCheckpoint {
                seq: 0,
                hash: String::new(),
                at: Utc::now(),
                mac: String::new(),
            }));
        }
        Ok(out)
    }
}

#[cfg(unix)]
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Sign (seq, hash) and keep the checkpoint in the store and in the file.
pub async fn seal(store: &dyn Store, key: &AuditKey, seq: i64, hash: &str) -> Result<AuditCheckpoint, CoreError> {
    let c = key.sign(seq, hash);
    key.append_file(&c)?;
    store.add_audit_checkpoint(&c).await?;
    Ok(c)
}

/// Sign the current head of the chain (nothing when the chain is empty).
pub async fn seal_head(store: &dyn Store, key: &AuditKey) -> Result<Option<AuditCheckpoint>, CoreError> {
    match store.audit_head().await? {
        Some((seq, hash)) => Ok(Some(seal(store, key, seq, &hash).await?)),
        None => Ok(None),
    }
}

/// Every checkpoint from the store and the file, by seq; `Err(seq)` names the first one whose
/// signature does not hold.
pub async fn checked_checkpoints(
    store: &dyn Store,
    key: &AuditKey,
) -> Result<Result<Vec<AuditCheckpoint>, i64>, CoreError> {
    let mut all = store.audit_checkpoints().await?;
    all.extend(key.read_file()?);
    all.sort_by_key(|c| c.seq);
    all.dedup();
    if let Some(bad) = all.iter().find(|c| !key.verify(c)) {
        return Ok(Err(bad.seq));
    }
    Ok(Ok(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_and_signatures_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let k = AuditKey::open_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let c = k.sign(100, "ab");
        assert!(k.verify(&c));
        assert!(!k.verify(&AuditCheckpoint { hash: "ac".into(), ..c.clone() }));
        let again = AuditKey::open_or_create(&path).unwrap();
        assert!(again.verify(&c), "the key survives a restart");
        assert!(!format!("{again:?}").contains(&hex::encode(again.key)));
    }
}
