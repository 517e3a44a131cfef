//! Delta Sharing's change feed (`GET .../changes`) through the gate: the rows a recipient
//! receives are the governed changes (`citydata_lake::Lake::changes_governed`, the plan of
//! `GET /api/v1/resources/{id}/changes`): its grant's items, masks and row filter apply, and a
//! row an update moves out of the filter arrives as a delete. The table's change feed must be
//! on (every citydata table records it); the range must lie within the history window.

use super::protocol::{FILE_URL_TTL_SECS, TableMeta, not_found};
use crate::audit::Actor;
use crate::gate::requested;
use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::audit::Outcome;
use citydata_domain::principal::Principal;
use citydata_domain::resource::ItemName;
use citydata_domain::{FieldError, ValidationErrors};
use sha2::{Digest, Sha256};

/// The range of a changes query: a start (version or timestamp) is required; the end defaults
/// to the current version.
#[derive(Debug, Clone, Default)]
pub struct ChangesQuery {
    pub starting_version: Option<i64>,
    pub starting_timestamp: Option<String>,
    pub ending_version: Option<i64>,
    pub ending_timestamp: Option<String>,
}

/// One change file handed out (`cdf` action).
#[derive(Debug, Clone)]
pub struct ChangeFileUrl {
    /// Path under the server's base URL (signed), or an absolute presigned URL.
    pub url: String,
    pub id: String,
    pub size: i64,
    pub version: i64,
    pub timestamp: i64,
    pub expiration_timestamp: i64,
}

/// A changes query's answer.
#[derive(Debug, Clone)]
pub struct ChangesAnswer {
    pub meta: TableMeta,
    pub starting_version: i64,
    pub files: Vec<ChangeFileUrl>,
}

fn ts_millis(field: &str, ts: &str) -> Result<i64, CoreError> {
    chrono::DateTime::parse_from_rfc3339(ts).map(|t| t.timestamp_millis()).map_err(|_| {
        FieldError::new(
            field,
            "invalid_timestamp",
            format!("{field} 须为 RFC 3339 时间 / {field} must be an RFC 3339 time"),
        )
        .into()
    })
}

impl Core {
    /// The governed change feed of `share.schema.table` over a version range, as signed (or,
    /// on S3, presigned) URLs of Parquet files, one per commit version. Audited like a read.
    pub async fn sharing_changes(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        share: &str,
        schema: &str,
        table: &str,
        q: &ChangesQuery,
    ) -> Result<ChangesAnswer, CoreError> {
        let g = self.sharing_gate(meta, principal, share, schema, table).await?;
        let full = format!("{share}.{schema}.{table}");
        let holder = super::protocol::UrlHolder::of(principal);
        let result = self.sharing_changes_of(&g, q, &full, table, &holder).await;
        let (outcome, details) = match &result {
            Ok(a) => (
                Outcome::Success,
                serde_json::json!({
                    "decision": "allow",
                    "via": "delta_sharing_changes",
                    "grant_id": g.allow.grant_id,
                    "starting_version": a.starting_version,
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
            "data.sharing_changes",
            Some(format!("resource:{}", g.resource.content.code)),
            outcome,
            details,
        )
        .await?;
        result
    }

    async fn sharing_changes_of(
        &self,
        g: &crate::gate::Gated,
        q: &ChangesQuery,
        full: &str,
        table: &str,
        holder: &super::protocol::UrlHolder,
    ) -> Result<ChangesAnswer, CoreError> {
        let lake = self.lake()?;
        let label = crate::error::table_label(&g.resource);
        let history = lake.history(g.resource.id).await.map_err(|e| CoreError::from(e).for_resource(&label))?;
        let current = history.iter().map(|v| v.version).max().ok_or_else(|| not_found(full))?;
        let mut errs = ValidationErrors::new();
        let start = match (q.starting_version, &q.starting_timestamp) {
            (Some(v), None) if v >= 0 => v,
            (Some(_), None) => {
                errs.push(FieldError::new("startingVersion", "out_of_range", "startingVersion 不能为负 / must be ≥ 0"));
                0
            }
            (None, Some(ts)) => {
                // The first version committed at or after the timestamp.
                let at = ts_millis("startingTimestamp", ts)?;
                history.iter().filter(|v| v.timestamp.is_some_and(|t| t >= at)).map(|v| v.version).min().ok_or_else(
                    || CoreError::VersionNotFound(format!("{ts} 之后没有版本 / no version at or after {ts}")),
                )?
            }
            _ => {
                errs.push(FieldError::new(
                    "startingVersion",
                    "required",
                    "须给出 startingVersion 或 startingTimestamp 之一 / give startingVersion or startingTimestamp",
                ));
                0
            }
        };
        let end = match (q.ending_version, &q.ending_timestamp) {
            (Some(v), None) => Some(v),
            (None, Some(ts)) => {
                let at = ts_millis("endingTimestamp", ts)?;
                Some(
                    history
                        .iter()
                        .filter(|v| v.timestamp.is_some_and(|t| t <= at))
                        .map(|v| v.version)
                        .max()
                        .ok_or_else(|| {
                            CoreError::VersionNotFound(format!("{ts} 时表尚无版本 / the table had no version at {ts}"))
                        })?,
                )
            }
            (None, None) => None,
            (Some(_), Some(_)) => {
                errs.push(FieldError::new(
                    "endingVersion",
                    "conflict",
                    "endingVersion 与 endingTimestamp 只能给出其一 / give endingVersion or endingTimestamp, not both",
                ));
                None
            }
        };
        errs.into_result()?;
        if start > current || end.is_some_and(|e| e > current) {
            return Err(CoreError::VersionNotFound(format!(
                "版本超出当前版本 {current} / the range is past the current version {current}"
            )));
        }
        if end.is_some_and(|e| e < start) {
            return Err(FieldError::new(
                "endingVersion",
                "out_of_range",
                "结束版本早于起始版本 / the range ends before it starts",
            )
            .into());
        }
        self.check_history(g, start, "startingVersion").await?;

        let mut errs = ValidationErrors::new();
        let req = requested(&g.resource, &g.allow, None, None, None, None, &mut errs);
        errs.into_result()?;
        let read = g.plan(&req, &self.config.pseudonym_key, None);
        let keys: Vec<ItemName> = g.resource.content.items.iter().filter(|i| i.key).map(|i| i.name.clone()).collect();
        let scope = format!(
            "{:?}|{:?}|{:?}|{}|{:?}",
            g.allow.fields, g.allow.masks, g.allow.row_filter, g.resource.revision, g.regions
        );
        let hash = hex::encode(&Sha256::digest(scope.as_bytes())[..12]);
        let owner = match g.allow.grant_id {
            Some(id) => format!("g{}", id.simple()),
            None => "p".to_string(),
        };
        let key = format!("{owner}-cdf-{hash}");
        let (written, _) = lake
            .write_shared_changes(g.resource.id, &key, start, end, &keys, &read)
            .await
            .map_err(|e| CoreError::from(e).for_resource(&label))?
            .ok_or_else(|| not_found(full))?;
        self.touch_shared(g.resource.id, &key).await;
        // The schema of the shared table: the same plan, so the same columns and types.
        let t = self.sharing_materialize(g, &super::SharingQuery::default(), full).await?;
        let expires = Utc::now().timestamp() + FILE_URL_TTL_SECS;
        let ttl = std::time::Duration::from_secs(FILE_URL_TTL_SECS as u64);
        let mut files = Vec::new();
        for f in written {
            let path = format!("{}/{}", g.resource.id, f.path);
            let url = match lake.presigned_get(&format!("sharing/{path}"), ttl).await? {
                Some(u) => u.to_string(),
                None => self.signed_file_path(&path, expires, holder),
            };
            let timestamp = history.iter().find(|v| v.version == f.version).and_then(|v| v.timestamp).unwrap_or(0);
            files.push(ChangeFileUrl {
                url,
                id: hex::encode(&Sha256::digest(path.as_bytes())[..16]),
                size: f.size,
                version: f.version,
                timestamp,
                expiration_timestamp: expires * 1000,
            });
        }
        Ok(ChangesAnswer {
            meta: TableMeta {
                version: t.source_version,
                table_id: t.table_id,
                schema_string: t.schema_string,
                name: table.to_string(),
            },
            starting_version: start,
            files,
        })
    }
}
