//! The receipt key: an Ed25519 key pair signing license-verification receipts. Kept in the data
//! directory as `receipt_key` (the 32-byte seed in hex, mode 0600, made at first start) or
//! given in the settings (`license_receipt_key`, for nodes that must sign with one key). Its
//! public half is published at `GET /api/v1/licenses/receipt-key` (JSON, raw key in base64) and
//! `GET /api/v1/licenses/receipt-key.pem` (SubjectPublicKeyInfo PEM).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The signing key. `Debug` shows the key id only.
#[derive(Clone)]
pub struct ReceiptKey(SigningKey);

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptKey({})", self.key_id())
    }
}

impl ReceiptKey {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// A fresh random key (a process without a configured one: tests, one-off commands).
    pub fn random() -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    /// The key from its seed in hex (64 characters).
    pub fn parse_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s.trim()).ok()?;
        Some(Self::from_seed(bytes.try_into().ok()?))
    }

    /// The key kept at `path`, made (mode 0600) when the file is absent.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if let Ok(s) = std::fs::read_to_string(path) {
            return Self::parse_hex(&s).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a 64-hex-digit Ed25519 seed", path.display()),
                )
            });
        }
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        write_private(path, &hex::encode(seed))?;
        Ok(Self::from_seed(seed))
    }

    pub fn public_bytes(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// The raw public key, base64.
    pub fn public_base64(&self) -> String {
        B64.encode(self.public_bytes())
    }

    /// The public key as a PEM SubjectPublicKeyInfo (what OpenSSL and `cryptography` load).
    pub fn public_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.public_bytes());
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", B64.encode(der))
    }

    /// The first 16 hex digits of the SHA-256 of the raw public key.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.public_bytes())[..8])
    }

    /// The signature of `payload`'s bytes, base64.
    pub fn sign(&self, payload: &str) -> String {
        B64.encode(self.0.sign(payload.as_bytes()).to_bytes())
    }
}

/// Whether `signature` (base64) is `public_key`'s (raw, base64) signature of `payload`.
pub fn verify_receipt(public_key: &str, payload: &str, signature: &str) -> bool {
    let (Ok(k), Ok(s)) = (B64.decode(public_key.trim()), B64.decode(signature.trim())) else { return false };
    let (Ok(k), Ok(s)) = (<[u8; 32]>::try_from(k), <[u8; 64]>::try_from(s)) else { return false };
    let Ok(key) = VerifyingKey::from_bytes(&k) else { return false };
    key.verify(payload.as_bytes(), &Signature::from_bytes(&s)).is_ok()
}

#[cfg(unix)]
fn write_private(path: &Path, s: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(s.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, s: &str) -> std::io::Result<()> {
    std::fs::write(path, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_payload_does_not() {
        let k = ReceiptKey::from_seed([7; 32]);
        let sig = k.sign("{\"status\":\"valid\"}");
        assert!(verify_receipt(&k.public_base64(), "{\"status\":\"valid\"}", &sig));
        assert!(!verify_receipt(&k.public_base64(), "{\"status\":\"revoked\"}", &sig));
        assert!(!verify_receipt(&ReceiptKey::from_seed([8; 32]).public_base64(), "{\"status\":\"valid\"}", &sig));
        assert!(k.public_pem().starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
        assert!(!format!("{k:?}").contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn the_key_file_is_made_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipt_key");
        let a = ReceiptKey::load_or_create(&path).unwrap();
        let b = ReceiptKey::load_or_create(&path).unwrap();
        assert_eq!(a.public_bytes(), b.public_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
