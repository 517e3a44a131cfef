//! 全量质量剖析 (a full profile on demand): the current table version read back and run
//! through the same converter, rules and counters as an ingest, replacing that version's
//! report. The provider's stewards only (they read the whole table anyway); the report it
//! stores is seen like any other.

use super::{QualityReport, build_report};
use crate::audit::Actor;
use crate::catalog::can_edit;
use crate::{Core, CoreError, RequestMeta};
use chrono::Utc;
use citydata_domain::principal::Principal;
use citydata_lake::convert::{Converter, Mapping};
use citydata_lake::ingest::{FailureCount, IngestReport, Policy};
use citydata_lake::quality::{QualityEval, as_raw};
use citydata_lake::table::WriteMode;
use citydata_store::QualityReportRecord;
use std::collections::BTreeMap;
use uuid::Uuid;

impl Core {
    /// Profile the current table version in full and store it as that version's report.
    pub async fn profile_quality(
        &self,
        meta: &RequestMeta,
        principal: &Principal,
        key: &str,
    ) -> Result<QualityReport, CoreError> {
        let result = async {
            let resource = self.get_resource(Some(principal), key).await?;
            if !can_edit(principal, &resource.content.provider) {
                return Err(CoreError::forbidden());
            }
            let code = resource.content.code.to_string();
            let lake = self.lake()?.clone();
            let version = lake
                .version(resource.id)
                .await?
                .ok_or_else(|| CoreError::NotFound("此资源还没有数据 / the resource has no data yet".into()))?;
            let items = resource.content.items.clone();
            let cols: Vec<String> = items.iter().map(|i| format!("\"{}\"", i.name)).collect();
            let batches = lake
                .query(resource.id, Some(version), &format!("SELECT {} FROM t", cols.join(", ")))
                .await
                .map_err(|e| CoreError::from(e).for_resource(&code))?;
            let references = self.reference_keys(&resource.content, resource.id).await?;
            let rules = resource.content.quality_rules.clone();
            let consistency = resource.content.consistency.clone();
            let started = std::time::Instant::now();
            let (counts, failures, invalid) = tokio::task::spawn_blocking(move || {
                let headers: Vec<String> = items.iter().map(|i| i.name.to_string()).collect();
                let mapping = Mapping::new(&headers, &items, true)?;
                let eval = QualityEval::new(&items, &rules, references, Utc::now());
                let mut conv = Converter::new(&items, &consistency, mapping).with_quality(eval);
                let mut failures: BTreeMap<(Option<String>, Option<String>, String), u64> = BTreeMap::new();
                let mut invalid = 0u64;
                let mut line = 1;
                for b in &batches {
                    let raw = as_raw(b, &items, line)?;
                    line += b.num_rows() as u64;
                    for row in conv.convert(&raw)?.invalid {
                        invalid += 1;
                        for f in row.failures {
                            *failures.entry((f.item, f.title, f.rule)).or_default() += 1;
                        }
                    }
                }
                let counts = conv.take_quality().map(|q| q.counts).unwrap_or_default();
                Ok::<_, citydata_lake::LakeError>((counts, failures, invalid))
            })
            .await
            .map_err(|e| CoreError::Internal(e.to_string()))?
            .map_err(CoreError::from)?;
            let synthetic = IngestReport {
                ingest_id: Uuid::nil(),
                mode: WriteMode::Replace,
                policy: Policy::Accept,
                rows_read: counts.rows,
                rows_committed: counts.rows,
                rows_quarantined: invalid,
                failures: failures
                    .into_iter()
                    .map(|((item, title, rule), count)| FailureCount { item, title, rule, count })
                    .collect(),
                sample: vec![],
                duration_ms: started.elapsed().as_millis() as u64,
                rows_per_sec: 0.0,
                bytes_read: 0,
                encoding: None,
                table_version: Some(version),
                already_applied: false,
                rejected: false,
                all_quarantined: false,
                quality: None,
            };
            let now = Utc::now();
            let (mut report, samples) =
                build_report(&resource, &counts, &synthetic, version, &self.config.quality_weights, now);
            report.ingest_id = None;
            report.profile = true;
            self.store
                .put_quality_report(&QualityReportRecord {
                    resource_id: resource.id,
                    version,
                    ingest_id: None,
                    report: serde_json::to_value(&report).map_err(|e| CoreError::Internal(e.to_string()))?,
                    samples,
                    created_at: now,
                })
                .await?;
            Ok((code, report))
        }
        .await;
        let target = result.as_ref().ok().map(|(c, _)| format!("resource:{c}"));
        let (_, report) = self.audited(meta, Actor::Principal(principal), "quality.profile", target, result).await?;
        self.quality_report(Some(principal), key, Some(report.version)).await
    }
}
