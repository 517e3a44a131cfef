//! 动态口令 (TOTP, RFC 6238) over HOTP (RFC 4226): the codes an authenticator app shows, the
//! base32 secret it is given, and the `otpauth://` URI that carries both.

use hmac::{Hmac, Mac};

/// The hash behind the HMAC (authenticator apps use SHA-1; RFC 6238 also tests SHA-256/512).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// Seconds per step and digits per code that every authenticator app accepts.
pub const STEP_SECS: u64 = 30;
pub const DIGITS: u32 = 6;

/// HOTP (RFC 4226 §5.3): HMAC of the big-endian counter, dynamic truncation, `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32, alg: TotpAlgorithm) -> String {
    let msg = counter.to_be_bytes();
    let mac: Vec<u8> = match alg {
        TotpAlgorithm::Sha1 => mac_of::<Hmac<sha1::Sha1>>(secret, &msg),
        TotpAlgorithm::Sha256 => mac_of::<Hmac<sha2::Sha256>>(secret, &msg),
        TotpAlgorithm::Sha512 => mac_of::<Hmac<sha2::Sha512>>(secret, &msg),
    };
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let bin = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    let code = u64::from(bin) % 10u64.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

fn mac_of<M: Mac + hmac::digest::KeyInit>(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// TOTP (RFC 6238 §4): HOTP of the number of `step`-second periods since the epoch.
pub fn totp(secret: &[u8], unix_secs: u64, step: u64, digits: u32, alg: TotpAlgorithm) -> String {
    hotp(secret, unix_secs / step, digits, alg)
}

/// The step a 6-digit SHA-1 `code` belongs to, within one step either side of `unix_secs`
/// (clock drift), or `None`. Comparison in constant time per candidate.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_secs / STEP_SECS;
    [now.saturating_sub(1), now, now + 1].into_iter().find(|&s| {
        let want = hotp(secret, s, DIGITS, TotpAlgorithm::Sha1);
        want.bytes().zip(code.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    })
}

/// RFC 4648 base32 without padding (what authenticator apps read).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED1: &[u8] = b"12345678901234567890";
    const SEED256: &[u8] = b"12345678901234567890123456789012";
    const SEED512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B: every test vector, 8 digits, 30-second steps.
    #[test]
    fn rfc6238_test_vectors() {
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, sha1, sha256, sha512) in vectors {
            assert_eq!(totp(SEED1, t, 30, 8, TotpAlgorithm::Sha1), sha1, "SHA1 at {t}");
            assert_eq!(totp(SEED256, t, 30, 8, TotpAlgorithm::Sha256), sha256, "SHA256 at {t}");
            assert_eq!(totp(SEED512, t, 30, 8, TotpAlgorithm::Sha512), sha512, "SHA512 at {t}");
        }
    }

    /// RFC 4226 Appendix D: HOTP values for counters 0..9.
    #[test]
    fn rfc4226_test_vectors() {
        let want = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(hotp(SEED1, c as u64, 6, TotpAlgorithm::Sha1), *w, "counter {c}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_neighbours_only() {
        let t = 1_111_111_111;
        let code = totp(SEED1, t, 30, 6, TotpAlgorithm::Sha1);
        assert_eq!(matching_step(SEED1, &code, t), Some(t / 30));
        assert_eq!(matching_step(SEED1, &code, t + 30), Some(t / 30));
        assert_eq!(matching_step(SEED1, &code, t - 30), Some(t / 30));
        assert_eq!(matching_step(SEED1, &code, t + 90), None);
        assert_eq!(matching_step(SEED1, "12345", t), None);
        assert_eq!(matching_step(SEED1, "abcdef", t), None);
    }

    #[test]
    fn base32_and_uri() {
        // RFC 4648 §10.
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(SEED1), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let u = otpauth_uri("泰州 数据", "admin", SEED1);
        assert!(u.starts_with("otpauth://totp/%E6%B3%B0%E5%B7%9E%20%E6%95%B0%E6%8D%AE:admin?secret=GEZDG"), "{u}");
    }
}
