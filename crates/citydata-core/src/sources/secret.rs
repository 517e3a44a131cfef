//! Source secrets (database passwords, API keys and auth headers) at rest: XChaCha20-Poly1305
//! under a key derived from the server secret (HMAC-SHA256 of a fixed label), a random
//! 24-byte nonce per seal, and the source id as associated data, so that a sealed secret
//! copied onto another source does not open. Stored as `v1:` + base64(nonce ‖ ciphertext).
//! The API never returns them; views only say whether one is set.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

const LABEL: &[u8] = b"citydata.sources.secret.v1";

fn cipher(server_secret: &[u8]) -> XChaCha20Poly1305 {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(server_secret).expect("HMAC takes any key length");
    mac.update(LABEL);
    let key = mac.finalize().into_bytes();
    XChaCha20Poly1305::new(&key)
}

/// Seal `plain` for source `id`.
pub(crate) fn seal(server_secret: &[u8], id: Uuid, plain: &str) -> Result<String, String> {
    let nonce_bytes: [u8; 24] = rand::random();
    let nonce = XNonce::from_slice(&nonce_bytes);
    let ct = cipher(server_secret)
        .encrypt(nonce, Payload { msg: plain.as_bytes(), aad: id.as_bytes() })
        .map_err(|_| "sealing a source secret failed".to_string())?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&ct);
    Ok(format!("v1:{}", base64::engine::general_purpose::STANDARD.encode(out)))
}

/// Open a sealed secret of source `id`; an error when it was sealed under another key or
/// for another source, or was altered.
pub(crate) fn open(server_secret: &[u8], id: Uuid, sealed: &str) -> Result<String, String> {
    let bad = || {
        "来源的密钥无法解密（服务器密钥已更换？）/ the source's secret cannot be decrypted (was the server secret changed?)".to_string()
    };
    let raw = sealed
        .strip_prefix("v1:")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .filter(|r| r.len() > 24)
        .ok_or_else(bad)?;
    let (nonce, ct) = raw.split_at(24);
    let plain = cipher(server_secret)
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: id.as_bytes() })
        .map_err(|_| bad())?;
    String::from_utf8(plain).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_source() {
        let id = Uuid::now_v7();
        let s = seal(b"k1", id, "p@ss").unwrap();
        assert!(!s.contains("p@ss"));
        assert_eq!(open(b"k1", id, &s).unwrap(), "p@ss");
        assert!(open(b"k2", id, &s).is_err());
        assert!(open(b"k1", Uuid::now_v7(), &s).is_err());
        assert_ne!(seal(b"k1", id, "p@ss").unwrap(), s, "a fresh nonce each time");
    }
}
