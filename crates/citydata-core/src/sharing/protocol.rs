//! The Delta Sharing protocol's use cases: what a recipient's share holds, and its queries.
//!
//! A recipient (the profile's owner) has one share, named after its department (`wjw`) or
//! `open` for a public user; it holds every resource with data that the gate lets the owner
//! export ([`Action::Export`]): the schema is the provider department's code, the table the
//! resource's slug. Nothing here decides policy: each table is read through [`Core::gate`] and
//! [`crate::gate::Gated::plan`], the plan every governed read uses, and written as a shared
//! Delta table keyed by the grant, the source version and the exact scope.

use crate::audit::Actor;
use crate::catalog::ListFilter;
use crate::gate::{Gated, requested};
use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::ValidationErrors;
use citydata_domain::audit::Outcome;
use citydata_domain::policy::{Action, Decision};
use citydata_domain::principal::Principal;
use citydata_domain::resource::Resource;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How long a signed file URL stays valid.
pub const FILE_URL_TTL_SECS: i64 = 15 * 60;

/// One table of a share.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SharedTableRef {
    pub share: String,
    pub schema: String,
    pub name: String,
    pub resource_id: Uuid,
}

/// A table's metadata: the source version, the shared table's id and Delta schema.
#[derive(Debug, Clone)]
pub struct TableMeta {
    pub version: i64,
    pub table_id: String,
    pub schema_string: String,
    pub name: String,
}

/// A query's parameters (all optional; hints are best effort).
#[derive(Debug, Clone, Default)]
pub struct SharingQuery {
    pub version: Option<i64>,
    pub timestamp: Option<String>,
    pub limit_hint: Option<i64>,
    pub json_predicate_hints: Option<String>,
}

/// One file handed out.
#[derive(Debug, Clone)]
pub struct SharedFileUrl {
    /// The path (under the server's base URL) of the signed file URL.
    pub path: String,
    pub id: String,
    pub size: i64,
    pub stats: Option<String>,
    pub expiration_timestamp: i64,
}

/// Whom a signed file URL was handed to: the profile (and its owner, to look it up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlHolder {
    pub profile: Uuid,
    pub user: Uuid,
}

impl UrlHolder {
    /// The profile a `/delta-sharing/` principal authenticated with.
    pub fn of(principal: &Principal) -> Self {
        let profile = match &principal.via {
            citydata_domain::principal::AuthMethod::Token { token_id, .. } => *token_id,
            _ => Uuid::nil(),
        };
        Self { profile, user: principal.user_id }
    }
}

/// A query's answer.
#[derive(Debug, Clone)]
pub struct QueryAnswer {
    pub meta: TableMeta,
    pub files: Vec<SharedFileUrl>,
}

pub(super) fn not_found(what: &str) -> CoreError {
    CoreError::NotFound(format!("共享、库或表不存在：{what} / no such share, schema or table: {what}"))
}

/// The share of `principal`: its (first) department's code, or `open` for a public user.
pub fn share_name(principal: &Principal) -> String {
    principal.memberships.first().map(|m| m.department.to_string()).unwrap_or_else(|| "open".into())
}

type HmacSha256 = Hmac<Sha256>;

impl Core {
    fn url_key(&self) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.config.pseudonym_key).expect("any key length");
        mac.update(b"citydata delta-sharing file urls v1");
        mac.finalize().into_bytes().to_vec()
    }

    pub(super) fn file_signature(&self, path: &str, expires: i64, holder: &UrlHolder) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.url_key()).expect("any key length");
        mac.update(format!("{path}\n{expires}\n{}\n{}", holder.profile, holder.user).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A signed file URL path: the file, its expiry and the profile it was handed to (checked
    /// live when the file is fetched, so revoking the profile ends its URLs at once).
    pub(super) fn signed_file_path(&self, path: &str, expires: i64, holder: &UrlHolder) -> String {
        let sig = self.file_signature(path, expires, holder);
        format!("/delta-sharing/files/{path}?expires={expires}&p={}&u={}&sig={sig}", holder.profile, holder.user)
    }

    /// The local file a signed URL names, when its signature is right, it has not expired and
    /// the profile it was handed to is still live (403 otherwise; 404 when the shared table is
    /// gone, e.g. after its grant ended).
    pub async fn sharing_file(
        &self,
        path: &str,
        expires: i64,
        holder: &UrlHolder,
        sig: &str,
    ) -> Result<std::path::PathBuf, CoreError> {
        let denied = || CoreError::Forbidden("文件链接无效或已过期 / the file URL is invalid or has expired".into());
        let expected = self.file_signature(path, expires, holder);
        let same = expected.len() == sig.len()
            && expected.bytes().zip(sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        let now = Utc::now();
        if !same || expires < now.timestamp() {
            return Err(denied());
        }
        let live = self
            .store
            .list_sharing_profiles(holder.user)
            .await?
            .into_iter()
            .any(|t| t.id == holder.profile && t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now));
        if !live {
            return Err(CoreError::Forbidden(
                "共享凭证已撤销或过期 / the sharing profile was revoked or has expired".into(),
            ));
        }
        let mut parts = path.splitn(3, '/');
        let (Some(rid), Some(key), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(denied());
        };
        let rid = Uuid::parse_str(rid).map_err(|_| denied())?;
        self.lake()?
            .shared_file_path(rid, key, file)
            .ok_or_else(|| CoreError::NotFound("文件不存在 / no such file".into()))
    }

    /// On a lake in S3, the files' URLs become presigned GET URLs of the bucket, valid as long
    /// as the signed URLs citydata serves itself: the reader downloads from the object store.
    async fn presign_shared_files(&self, files: &mut [SharedFileUrl]) -> Result<(), CoreError> {
        let lake = self.lake()?;
        if !lake.is_remote() {
            return Ok(());
        }
        let ttl = std::time::Duration::from_secs(FILE_URL_TTL_SECS as u64);
        for f in files {
            let rel = f.path.trim_start_matches("/delta-sharing/files/");
            let rel = rel.split('?').next().unwrap_or(rel);
            if let Some(url) = lake.presigned_get(&format!("sharing/{rel}"), ttl).await? {
                f.path = url.to_string();
            }
        }
        Ok(())
    }

    /// Every resource with data that `principal` may export, as tables of its share.
    pub async fn sharing_tables(&self, principal: &Principal) -> Result<Vec<SharedTableRef>, CoreError> {
        let share = share_name(principal);
        let filter = ListFilter { state: Some("published".into()), ..Default::default() };
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let (_, page) = self.list_resources(Some(principal), &filter, 200, offset).await?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as u64;
            for r in page {
                if !matches!(self.decision(Some(principal), &r, Action::Export).await?, Decision::Allow(_)) {
                    continue;
                }
                if self.lake()?.version(r.id).await.ok().flatten().is_none() {
                    continue;
                }
                out.push(SharedTableRef {
                    share: share.clone(),
                    schema: r.content.provider.to_string(),
                    name: r.content.slug.as_str().to_string(),
                    resource_id: r.id,
                });
            }
        }
        out.sort();
        Ok(out)
    }

    /// `Ok` when `share` is the principal's share.
    pub fn sharing_check_share(&self, principal: &Principal, share: &str) -> Result<(), CoreError> {
        if share == share_name(principal) { Ok(()) } else { Err(not_found(share)) }
    }

    /// The resource behind `share.schema.table` through the gate (a refusal is audited and
    /// answers 403; an unknown or invisible name 404).
    pub(super) async fn sharing_gate(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        share: &str,
        schema: &str,
        table: &str,
    ) -> Result<Gated, CoreError> {
        self.sharing_check_share(principal, share)?;
        let full = format!("{share}.{schema}.{table}");
        let resource: Resource = self.get_resource(Some(principal), table).await.map_err(|_| not_found(&full))?;
        if resource.content.slug.as_str() != table || resource.content.provider.as_str() != schema {
            return Err(not_found(&full));
        }
        self.gate(meta, Some(principal), &resource.id.to_string(), Action::Export, "data.sharing_query").await
    }

    /// The source version a query reads: `version`, the one current at `timestamp`, or the
    /// current one — within the resource's history window for other departments.
    async fn sharing_version(&self, g: &Gated, q: &SharingQuery) -> Result<Option<i64>, CoreError> {
        let asked = match (&q.version, &q.timestamp) {
            (Some(v), _) => Some(*v),
            (None, Some(ts)) => {
                let at = chrono::DateTime::parse_from_rfc3339(ts)
                    .map_err(|_| {
                        citydata_domain::FieldError::new(
                            "timestamp",
                            "invalid_timestamp",
                            "timestamp 须为 RFC 3339 时间 / timestamp must be an RFC 3339 time",
                        )
                    })?
                    .timestamp_millis();
                let history = self.lake()?.history(g.resource.id).await.map_err(CoreError::from)?;
                let found = history.iter().filter(|v| v.timestamp.is_some_and(|t| t <= at)).map(|v| v.version).max();
                Some(found.ok_or_else(|| {
                    CoreError::VersionNotFound(format!("{ts} 时表尚无版本 / the table had no version at {ts}"))
                })?)
            }
            (None, None) => None,
        };
        if let Some(v) = asked {
            self.check_history(g, v, if q.version.is_some() { "version" } else { "timestamp" }).await?;
        }
        Ok(asked)
    }

    /// The current source version of a table (`/version`).
    pub async fn sharing_table_version(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        share: &str,
        schema: &str,
        table: &str,
    ) -> Result<i64, CoreError> {
        let g = self.sharing_gate(meta, principal, share, schema, table).await?;
        let v = self.lake()?.version(g.resource.id).await.map_err(CoreError::from)?;
        v.ok_or_else(|| not_found(&format!("{share}.{schema}.{table}")))
    }

    /// Materialize what the gate allows of a table (at `q`'s version) and list its files.
    pub(super) async fn sharing_materialize(
        &self,
        g: &Gated,
        q: &SharingQuery,
        full: &str,
    ) -> Result<citydata_lake::sharing::SharedTable, CoreError> {
        let mut errs = ValidationErrors::new();
        let req = requested(&g.resource, &g.allow, None, None, None, None, &mut errs);
        errs.into_result()?;
        let lake = self.lake()?;
        let version = match self.sharing_version(g, q).await? {
            Some(v) => v,
            None => lake.version(g.resource.id).await.map_err(CoreError::from)?.ok_or_else(|| not_found(full))?,
        };
        let read = g.plan(&req, &self.config.pseudonym_key, Some(version));
        // The districts a `district` mask projects to belong to the scope: an edited boundary
        // is a different table.
        let scope = format!(
            "{}|{:?}|{:?}|{:?}|{}|{:?}",
            version, g.allow.fields, g.allow.masks, g.allow.row_filter, g.resource.revision, g.regions
        );
        let hash = hex::encode(&Sha256::digest(scope.as_bytes())[..12]);
        let owner = match g.allow.grant_id {
            Some(id) => format!("g{}", id.simple()),
            None => "p".to_string(),
        };
        let key = format!("{owner}-v{version}-{hash}");
        let label = crate::error::table_label(&g.resource);
        let table = lake.materialize_governed(g.resource.id, &key, &read).await;
        if table.as_ref().is_ok_and(Option::is_some) {
            self.touch_shared(g.resource.id, &key).await;
        }
        table
            .map_err(|e| CoreError::from(e).for_resource(&label))?
            .map(|mut t| {
                // Remember the key in the file paths handed out.
                for f in &mut t.files {
                    f.path = format!("{}/{key}/{}", g.resource.id, f.path);
                }
                t
            })
            .ok_or_else(|| not_found(full))
    }

    /// A table's metadata (`/metadata`).
    pub async fn sharing_metadata(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        share: &str,
        schema: &str,
        table: &str,
    ) -> Result<TableMeta, CoreError> {
        let g = self.sharing_gate(meta, principal, share, schema, table).await?;
        let full = format!("{share}.{schema}.{table}");
        let t = self.sharing_materialize(&g, &SharingQuery::default(), &full).await?;
        Ok(TableMeta {
            version: t.source_version,
            table_id: t.table_id,
            schema_string: t.schema_string,
            name: table.to_string(),
        })
    }

    /// A query (`POST .../query`): the files of what the gate allows, as signed URL paths.
    /// Audited like a read, with the files and bytes handed out.
    pub async fn sharing_query(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        share: &str,
        schema: &str,
        table: &str,
        q: &SharingQuery,
    ) -> Result<QueryAnswer, CoreError> {
        let g = self.sharing_gate(meta, principal, share, schema, table).await?;
        let full = format!("{share}.{schema}.{table}");
        let result = self.sharing_materialize(&g, q, &full).await;
        let holder = UrlHolder::of(principal);
        let result = result.map(|t| {
            let expires = Utc::now().timestamp() + FILE_URL_TTL_SECS;
            let mut files = Vec::new();
            let mut rows = 0i64;
            for f in t.files {
                if q.limit_hint.is_some_and(|l| l >= 0 && rows >= l) && !files.is_empty() {
                    break;
                }
                if !super::hints::may_match(q.json_predicate_hints.as_deref(), f.stats.as_deref()) {
                    continue;
                }
                rows += super::hints::num_records(f.stats.as_deref()).unwrap_or(0);
                files.push(SharedFileUrl {
                    path: self.signed_file_path(&f.path, expires, &holder),
                    id: hex::encode(&Sha256::digest(f.path.as_bytes())[..16]),
                    size: f.size,
                    stats: f.stats,
                    expiration_timestamp: expires * 1000,
                });
            }
            QueryAnswer {
                meta: TableMeta {
                    version: t.source_version,
                    table_id: t.table_id,
                    schema_string: t.schema_string,
                    name: table.to_string(),
                },
                files,
            }
        });
        let result = match result {
            Ok(mut a) => self.presign_shared_files(&mut a.files).await.map(|()| a),
            Err(e) => Err(e),
        };
        let (outcome, details) = match &result {
            Ok(a) => (
                Outcome::Success,
                serde_json::json!({
                    "decision": "allow",
                    "via": "delta_sharing",
                    "grant_id": g.allow.grant_id,
                    "version": a.meta.version,
                    "files": a.files.len(),
                    "bytes": a.files.iter().map(|f| f.size).sum::<i64>(),
                }),
            ),
            Err(e) => (Outcome::Failure, serde_json::json!({"decision": "allow", "error": e.code()})),
        };
        self.record(
            meta,
            Actor::Principal(principal),
            "data.sharing_query",
            Some(format!("resource:{}", g.resource.content.code)),
            outcome,
            details,
        )
        .await?;
        result
    }

    /// Note that a shared table's files are being handed out (the sweep keeps it until the
    /// URLs have expired). A failure is logged: the query still answers.
    pub(super) async fn touch_shared(&self, resource_id: Uuid, key: &str) {
        let Ok(lake) = self.lake() else { return };
        if let Err(e) = lake.touch_shared(resource_id, key).await {
            tracing::warn!(error = %e, %resource_id, key, "marking a shared table as handed out failed");
        }
    }

    /// Remove the shared tables not handed out for twice the file URLs' lifetime (superseded
    /// source versions, ended scopes, tables nobody reads any more). Run by the server with
    /// the compaction sweep. Returns how many were removed.
    pub async fn sweep_shared_tables(&self, now: chrono::DateTime<Utc>) -> Result<usize, CoreError> {
        let cutoff = now - chrono::Duration::seconds(2 * FILE_URL_TTL_SECS);
        Ok(self.lake()?.sweep_shared(cutoff).await?)
    }

    /// Drop every shared table written under grant `grant_id` (its grant ended).
    pub async fn drop_shared_for_grant(&self, resource_id: Uuid, grant_id: Uuid) {
        let Ok(lake) = self.lake() else { return };
        if let Err(e) = lake.drop_shared(resource_id, &format!("g{}", grant_id.simple())).await {
            tracing::warn!(error = %e, %grant_id, "dropping the shared tables of an ended grant failed");
        }
    }
}
