//! 动态口令 (TOTP, RFC 6238) as the second step of a password login for platform and
//! department admins, required by `totp_required_for_admins`.
//!
//! Enrolment happens at login: an admin without a confirmed secret who gives the right
//! password gets 401 `totp_enrolment_required` with a new secret (base32, an `otpauth://` URI
//! and its QR code as SVG); the next login with the password and a code of that secret
//! confirms it and returns ten recovery codes, shown once, stored as argon2 hashes. From then
//! on every password login needs a code (`totp_required`): a code of the current step or one
//! either side, never one whose step was used already, or an unused recovery code.
//! Secrets are sealed at rest under the server secret (XChaCha20-Poly1305, the user id as
//! associated data).

use crate::{Core, CoreError};
use chrono::Utc;
use citydata_domain::totp;
use citydata_domain::user::{Role, User};

/// A new secret to add to an authenticator app.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TotpEnrolment {
    /// Base32, for typing in.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as a QR code (inline SVG).
    pub qr_svg: Option<String>,
}

const RECOVERY_CODES: usize = 10;
/// The issuer shown in authenticator apps.
const ISSUER: &str = "citydata";

fn required() -> CoreError {
    CoreError::SecondFactor {
        code: "totp_required",
        message: "请输入身份验证器中的动态口令（或一个恢复码）/ enter the code from your authenticator app (or a recovery code)"
            .into(),
        enrol: None,
    }
}

fn invalid() -> CoreError {
    CoreError::SecondFactor {
        code: "totp_invalid",
        message: "动态口令不正确或已使用过 / the code is wrong or was used already".into(),
        enrol: None,
    }
}

fn is_admin_user(u: &User) -> bool {
    u.memberships.iter().any(|m| matches!(m.role, Role::Admin | Role::DeptAdmin))
}

/// Recovery codes are compared without case, spaces or dashes.
fn normalize(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

fn new_recovery_code() -> String {
    let raw = totp::base32(&rand::random::<[u8; 7]>()).to_ascii_lowercase();
    format!("{}-{}", &raw[..5], &raw[5..10])
}

fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

impl Core {
    fn open_totp(&self, user: &User, sealed: &str) -> Result<Vec<u8>, CoreError> {
        let hex_secret = crate::sources::secret::open(&self.config.pseudonym_key, user.id, sealed)
            .map_err(|_| CoreError::Internal("a TOTP secret does not open (server secret changed?)".into()))?;
        hex::decode(hex_secret).map_err(|_| CoreError::Internal("a TOTP secret is damaged".into()))
    }

    /// The second step of a password login for `user`, whose password was right. `Ok` with
    /// the new recovery codes when this login completed an enrolment (else empty).
    pub(crate) async fn second_factor(&self, user: &User, code: Option<&str>) -> Result<Vec<String>, CoreError> {
        let now = Utc::now();
        let unix = now.timestamp().max(0) as u64;
        let code = code.map(str::trim).filter(|c| !c.is_empty());
        let record = self.store.get_totp(user.id).await?;
        match record {
            Some(r) if r.confirmed_at.is_some() => {
                let Some(code) = code else { return Err(required()) };
                let secret = self.open_totp(user, &r.secret)?;
                if let Some(step) = totp::matching_step(&secret, code, unix) {
                    return match self.store.use_totp_step(user.id, step as i64).await? {
                        true => Ok(vec![]),
                        false => Err(invalid()),
                    };
                }
                let given = normalize(code);
                if given.len() == 10 {
                    for h in self.store.unused_recovery_codes(user.id).await? {
                        if self.passwords.verify(given.clone(), Some(h.clone())).await?
                            && self.store.use_recovery_code(user.id, &h, now).await?
                        {
                            return Ok(vec![]);
                        }
                    }
                }
                Err(invalid())
            }
            pending if self.config.totp_required && is_admin_user(user) => match (pending, code) {
                (Some(r), Some(code)) => {
                    let secret = self.open_totp(user, &r.secret)?;
                    let step = totp::matching_step(&secret, code, unix).ok_or_else(invalid)?;
                    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
                    let mut hashes = Vec::with_capacity(codes.len());
                    for c in &codes {
                        hashes.push(self.passwords.hash(normalize(c)).await?);
                    }
                    self.store.confirm_totp(user.id, step as i64, &hashes, now).await?;
                    Ok(codes)
                }
                _ => {
                    let secret: [u8; 20] = rand::random();
                    let sealed =
                        crate::sources::secret::seal(&self.config.pseudonym_key, user.id, &hex::encode(secret))
                            .map_err(CoreError::Internal)?;
                    self.store.put_totp_secret(user.id, &sealed, now).await?;
                    let otpauth_uri = totp::otpauth_uri(ISSUER, user.username.as_str(), &secret);
                    Err(CoreError::SecondFactor {
                        code: "totp_enrolment_required",
                        message: "管理员须启用动态口令：请用身份验证器扫描二维码（或输入密钥），再以密码和动态口令登录 / administrators need a second factor: add this secret to an authenticator app, then sign in with the password and a code".into(),
                        enrol: Some(Box::new(TotpEnrolment {
                            secret: totp::base32(&secret),
                            qr_svg: qr_svg(&otpauth_uri),
                            otpauth_uri,
                        })),
                    })
                }
            },
            _ => Ok(vec![]),
        }
    }
}
