//! Departments (部门) and users: creation by the people allowed to, listing.

use crate::audit::Actor;
use crate::{Core, CoreError, RequestMeta};
use chrono::{SubsecRound, Utc};
use citydata_domain::dept::{Department, DeptCode};
use citydata_domain::principal::Principal;
use citydata_domain::user::{Membership, Password, Role, User, Username, parse_display_name};
use citydata_domain::{FieldError, ValidationErrors};
use citydata_store::{NewUser, StoreError};
use serde::Deserialize;
use uuid::Uuid;

/// Input for a new department, as received.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDepartmentInput {
    /// Short unique code: letters, digits, `-` (e.g. `gaj`).
    pub code: String,
    /// 部门名称
    pub name: String,
    /// GB/T 2260 行政区划代码, six digits (e.g. `321200`).
    pub region_code: String,
    /// `city` or `district`.
    pub level: String,
    /// Code of the parent department.
    #[serde(default)]
    pub parent: Option<String>,
}

/// One role in one department, as received.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MembershipInput {
    pub department: String,
    /// `admin`, `dept_admin`, `steward` or `analyst`.
    pub role: String,
}

/// Input for a new user, as received.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewUserInput {
    pub username: String,
    pub display_name: String,
    /// At least 8 characters. Never logged.
    pub password: String,
    #[serde(default)]
    pub memberships: Vec<MembershipInput>,
}

impl std::fmt::Debug for NewUserInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserInput")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("password", &"<redacted>")
            .field("memberships", &self.memberships)
            .finish()
    }
}

struct ParsedUser {
    username: Username,
    display_name: String,
    password: Password,
    memberships: Vec<Membership>,
}

fn parse_user(input: &NewUserInput) -> Result<ParsedUser, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    let username = errs.check(Username::parse(&input.username));
    let display_name = errs.check(parse_display_name(&input.display_name));
    let password = errs.check(Password::parse(&input.password));
    let mut memberships = Vec::new();
    for (i, m) in input.memberships.iter().enumerate() {
        let d = DeptCode::parse(&m.department)
            .map_err(|e| FieldError { field: format!("memberships[{i}].department"), ..e });
        let r = Role::parse(&m.role).map_err(|e| FieldError { field: format!("memberships[{i}].role"), ..e });
        if let (Some(department), Some(role)) = (errs.check(d), errs.check(r)) {
            memberships.push(Membership { department, role });
        }
    }
    errs.into_result()?;
    Ok(ParsedUser {
        username: username.expect("checked"),
        display_name: display_name.expect("checked"),
        password: password.expect("checked"),
        memberships,
    })
}

impl Core {
    /// Create a department (platform admins).
    pub async fn create_department(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewDepartmentInput,
    ) -> Result<Department, CoreError> {
        let target = Some(format!("department:{}", input.code.trim().to_lowercase()));
        let result = async {
            // 1. Authorize before looking at the input, so that nothing is learnt without rights.
            if !principal.can_manage_departments() {
                return Err(CoreError::forbidden());
            }
            // 2. Validate.
            let d =
                Department::parse(&input.code, &input.name, &input.region_code, &input.level, input.parent.as_deref())?;
            // 3. Write.
            match self.store.create_department(&d).await {
                Ok(()) => {
                    self.forget_department_names();
                    Ok(d)
                }
                Err(StoreError::NotFound(_)) => Err(CoreError::Validation(
                    FieldError::new(
                        "parent",
                        "unknown_department",
                        format!(
                            "上级部门不存在：{} / parent department does not exist",
                            input.parent.as_deref().unwrap_or("")
                        ),
                    )
                    .into(),
                )),
                Err(e) => Err(e.into()),
            }
        }
        .await;
        // 4. Audit.
        self.audited(meta, Actor::Principal(principal), "department.create", target, result).await
    }

    pub async fn list_departments(&self) -> Result<Vec<Department>, CoreError> {
        Ok(self.store.list_departments().await?)
    }

    pub async fn get_department(&self, code: &str) -> Result<Department, CoreError> {
        let not_found = || CoreError::NotFound(format!("部门不存在：{code} / no such department: {code}"));
        let code = DeptCode::parse(code).map_err(|_| not_found())?;
        self.store.get_department(&code).await?.ok_or_else(not_found)
    }

    /// Create a user (platform admins; department admins for their department, without `admin`).
    pub async fn create_user(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        input: &NewUserInput,
    ) -> Result<User, CoreError> {
        let target = Some(format!("user:{}", input.username.trim().to_lowercase()));
        let result = async {
            let parsed = parse_user(input)?;
            let allowed = if parsed.memberships.is_empty() {
                principal.is_admin()
            } else {
                parsed.memberships.iter().all(|m| principal.can_manage_members(&m.department, m.role))
            };
            if !allowed {
                return Err(CoreError::forbidden());
            }
            self.insert_user(parsed).await
        }
        .await;
        self.audited(meta, Actor::Principal(principal), "user.create", target, result).await
    }

    async fn insert_user(&self, parsed: ParsedUser) -> Result<User, CoreError> {
        let hash = self.passwords.hash(parsed.password.expose().to_string()).await?;
        let new = NewUser {
            id: Uuid::now_v7(),
            username: parsed.username,
            display_name: parsed.display_name,
            password_hash: hash,
            memberships: parsed.memberships,
            created_at: Utc::now().trunc_subsecs(6),
        };
        match self.store.create_user(&new).await {
            Ok(u) => Ok(u),
            Err(StoreError::NotFound(what)) => Err(CoreError::Validation(
                FieldError::new(
                    "memberships",
                    "unknown_department",
                    format!("部门不存在：{what} / {what} does not exist"),
                )
                .into(),
            )),
            Err(StoreError::Conflict(_)) => Err(CoreError::Conflict(format!(
                "用户名已被使用：{} / username is taken: {}",
                new.username, new.username
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Create a user without a principal: the operator at the command line (`citydata init`,
    /// `citydata user add`) and demo seeding. `operator` names who did it in the audit log.
    pub async fn bootstrap_user(
        &self,
        meta: &RequestMeta,
        operator: &str,
        input: &NewUserInput,
    ) -> Result<User, CoreError> {
        let target = Some(format!("user:{}", input.username.trim().to_lowercase()));
        let result = async { self.insert_user(parse_user(input)?).await }.await;
        self.audited(meta, Actor::Name(operator), "user.create", target, result).await
    }

    /// Create a department without a principal (command line, demo seeding).
    pub async fn bootstrap_department(
        &self,
        meta: &RequestMeta,
        operator: &str,
        input: &NewDepartmentInput,
    ) -> Result<Department, CoreError> {
        let target = Some(format!("department:{}", input.code.trim().to_lowercase()));
        let result = async {
            let d =
                Department::parse(&input.code, &input.name, &input.region_code, &input.level, input.parent.as_deref())?;
            self.store.create_department(&d).await?;
            self.forget_department_names();
            Ok(d)
        }
        .await;
        self.audited(meta, Actor::Name(operator), "department.create", target, result).await
    }

    /// Users (platform admins see all; department admins see their departments' members).
    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<User>, CoreError> {
        let users = self.store.list_users().await?;
        if principal.is_admin() {
            return Ok(users);
        }
        let managed: Vec<&DeptCode> =
            principal.memberships.iter().filter(|m| m.role == Role::DeptAdmin).map(|m| &m.department).collect();
        if managed.is_empty() {
            return Err(CoreError::forbidden());
        }
        Ok(users.into_iter().filter(|u| u.memberships.iter().any(|m| managed.contains(&&m.department))).collect())
    }

    /// Display names of the users named by `keys` (usernames or user ids), for pages that
    /// show people by name (requests, comments, grants, audit). Unknown keys are left out;
    /// a signed-in caller is needed, since names are not public.
    pub async fn display_names(
        &self,
        _principal: &Principal,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, String>, CoreError> {
        let mut out = std::collections::HashMap::new();
        for k in keys {
            if out.contains_key(k) {
                continue;
            }
            let user = match Uuid::parse_str(k) {
                Ok(id) => self.store.get_user(id).await?,
                Err(_) => match Username::parse(k) {
                    Ok(u) => self.store.get_user_by_username(&u).await?.map(|(u, _)| u),
                    Err(_) => None,
                },
            };
            if let Some(u) = user {
                out.insert(k.clone(), u.display_name);
            }
        }
        Ok(out)
    }
}

/// A public user's registration, as received.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

impl std::fmt::Debug for RegisterInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterInput").field("email", &self.email).field("password", &"<redacted>").finish()
    }
}

impl Core {
    /// A member of the public registers with an email and a password (no department). Limited
    /// per client address; the email is not verified in this version.
    pub async fn register_public(&self, meta: &RequestMeta, input: &RegisterInput) -> Result<User, CoreError> {
        let email = input.email.trim().to_lowercase();
        let result = async {
            let key = format!("register|{}", meta.client.as_deref().unwrap_or(""));
            let now = Utc::now();
            if let Some(retry_after_secs) = self.register_limiter.blocked(self.store.as_ref(), &key, now).await? {
                return Err(CoreError::RateLimited { retry_after_secs });
            }
            self.register_limiter.record_failure(self.store.as_ref(), &key, now).await?;
            let mut errs = ValidationErrors::new();
            if !citydata_domain::identifiers::is_email(&email) {
                errs.push(FieldError::new("email", "invalid_email", "电子邮箱格式不正确 / not a valid email address"));
            }
            let password = errs.check(Password::parse(&input.password));
            let display =
                input.display_name.clone().unwrap_or_else(|| email.split('@').next().unwrap_or("用户").to_string());
            let display_name = errs.check(parse_display_name(&display));
            errs.into_result()?;
            if self.store.get_user_by_email(&email).await?.is_some() {
                return Err(CoreError::Conflict("该邮箱已注册 / this email is registered".into()));
            }
            use sha2::Digest;
            let tag = hex::encode(&sha2::Sha256::digest(email.as_bytes())[..5]);
            let parsed = ParsedUser {
                username: Username::parse(&format!("p-{tag}"))?,
                display_name: display_name.expect("checked"),
                password: password.expect("checked"),
                memberships: vec![],
            };
            let user = self.insert_user(parsed).await?;
            self.store.set_user_email(user.id, &email).await?;
            Ok(user)
        }
        .await;
        self.audited(meta, Actor::Name(&email), "user.register", Some(format!("email:{email}")), result).await
    }
}
