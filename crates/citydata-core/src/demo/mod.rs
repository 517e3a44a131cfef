//! Demo content for `serve --demo`: the city of 泰州 (Taizhou, 321200), its departments, demo
//! users and a catalog of about 30 resources. Idempotent: what exists already is left alone.

pub mod files;
pub mod generate;
pub mod spatial;

use crate::accounts::{MembershipInput, NewDepartmentInput, NewUserInput};
use crate::{Core, CoreError, RequestMeta};
use citydata_domain::dept::DeptCode;
use citydata_domain::resource::{ItemInput, ResourceInput};
use citydata_domain::user::Username;
use serde::Deserialize;
use serde_json::Value;

/// The password of every demo user. Demo mode only.
pub const DEMO_PASSWORD: &str = "citydata-demo";

/// The city's code (泰州市) and its districts and county-level cities (GB/T 2260).
pub const CITY_REGION: &str = "321200";
pub const DISTRICTS: &[(&str, &str)] = &[
    ("321202", "海陵区"),
    ("321203", "高港区"),
    ("321204", "姜堰区"),
    ("321281", "兴化市"),
    ("321282", "靖江市"),
    ("321283", "泰兴市"),
];

/// The demo's boundary resource (区县行政区划边界（示例）): the districts' generated outlines,
/// published and open to all, configured as `boundary_resource` when `serve --demo` names none.
pub const BOUNDARY: &str = "103/000003";

/// City departments: code, name.
pub const DEPARTMENTS: &[(&str, &str)] = &[
    ("dsjzx", "泰州市大数据管理中心"),
    ("gaj", "泰州市公安局"),
    ("scjgj", "泰州市市场监督管理局"),
    ("wjw", "泰州市卫生健康委员会"),
    ("rsj", "泰州市人力资源和社会保障局"),
    ("sthjj", "泰州市生态环境局"),
    ("jtysj", "泰州市交通运输局"),
    ("whlyj", "泰州市文化广电和旅游局"),
];

/// Demo users: username, display name, department, role.
pub const USERS: &[(&str, &str, &str, &str)] = &[
    ("admin", "平台管理员", "dsjzx", "admin"),
    ("gaj-steward", "公安局数据管理员", "gaj", "steward"),
    ("scjgj-steward", "市场监管局数据管理员", "scjgj", "steward"),
    ("wjw-analyst", "卫健委数据分析员", "wjw", "analyst"),
    ("wjw-steward", "卫健委数据管理员", "wjw", "steward"),
];

/// The demo catalog (资源名称, elements), as shipped.
const CATALOG: &str = include_str!("catalog.json");

#[derive(Deserialize)]
struct DemoResource {
    code: String,
    name: String,
    #[serde(rename = "abstract")]
    summary: String,
    provider: String,
    class: String,
    theme: String,
    format: (String, String),
    share: (String, Option<String>, String),
    open: (String, Option<String>),
    cycle: String,
    security: String,
    tags: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    consistency: Vec<String>,
    items: Vec<(String, String, String, String, Option<String>, bool)>,
}

impl DemoResource {
    fn input(&self) -> ResourceInput {
        ResourceInput {
            code: Some(self.code.clone()),
            slug: None,
            name: Some(self.name.clone()),
            summary: Some(self.summary.clone()),
            provider: Some(self.provider.clone()),
            classification: Some(citydata_domain::resource::ClassificationInput {
                class: Some(self.class.clone()),
                theme: Some(self.theme.clone()),
            }),
            format: Some(citydata_domain::resource::FormatInput {
                category: Some(self.format.0.clone()),
                kind: Some(self.format.1.clone()),
            }),
            items: self
                .items
                .iter()
                .map(|(name, title, data_type, sensitivity, validator, key)| ItemInput {
                    name: Some(name.clone()),
                    title: Some(title.clone()),
                    data_type: Some(data_type.clone()),
                    sensitivity: Some(sensitivity.clone()),
                    validator: validator.clone(),
                    key: Some(*key),
                    required: Some(*key),
                    ..Default::default()
                })
                .collect(),
            share: Some(citydata_domain::resource::ShareInput {
                kind: Some(self.share.0.clone()),
                conditions: self.share.1.clone(),
                method: Some(self.share.2.clone()),
            }),
            open: Some(citydata_domain::resource::OpenInput {
                kind: Some(self.open.0.clone()),
                conditions: self.open.1.clone(),
            }),
            update_cycle: Some(self.cycle.clone()),
            publish_date: None,
            related: vec![],
            security_level: Some(self.security.clone()),
            tags: self.tags.clone(),
            license: Some("泰州市公共数据开放许可协议".into()),
            // Each resource covers the districts it names, else the whole city.
            regions: if self.regions.is_empty() { vec![CITY_REGION.to_string()] } else { self.regions.clone() },
            contact: Some(format!("{}数据管理员", self.provider)),
            consistency: self.consistency.clone(),
            history_days: None,
            quality_rules: vec![],
        }
    }
}

/// What seeding created this time.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub departments_created: usize,
    pub users_created: usize,
    pub resources_created: usize,
}

/// The principal the demo seeding acts as: a platform administrator named `system`.
fn seeder() -> citydata_domain::principal::Principal {
    crate::auth::operator("system")
}

impl Core {
    /// Seed the demo departments, users and catalog; existing ones are kept as they are.
    pub async fn seed_demo(&self) -> Result<SeedReport, CoreError> {
        let mut report = self.seed_demo_accounts().await?;
        report.resources_created = self.seed_demo_catalog().await?;
        self.seed_demo_files().await?;
        Ok(report)
    }

    /// Seed only the demo departments and users.
    pub async fn seed_demo_accounts(&self) -> Result<SeedReport, CoreError> {
        let meta = RequestMeta::new(Some("demo-seed".into()), None);
        let mut report = SeedReport::default();
        for (code, name) in DEPARTMENTS {
            let dc = DeptCode::parse(code)?;
            if self.store.get_department(&dc).await?.is_some() {
                continue;
            }
            let input = NewDepartmentInput {
                code: code.to_string(),
                name: name.to_string(),
                region_code: CITY_REGION.into(),
                level: "city".into(),
                parent: None,
            };
            self.bootstrap_department(&meta, "system:demo", &input).await?;
            report.departments_created += 1;
        }
        for (username, display, dept, role) in USERS {
            if self.store.get_user_by_username(&Username::parse(username)?).await?.is_some() {
                continue;
            }
            let input = NewUserInput {
                username: username.to_string(),
                display_name: display.to_string(),
                password: DEMO_PASSWORD.into(),
                memberships: vec![MembershipInput { department: dept.to_string(), role: role.to_string() }],
            };
            self.bootstrap_user(&meta, "system:demo", &input).await?;
            report.users_created += 1;
        }
        Ok(report)
    }

    /// Seed the demo catalog; returns how many resources were created.
    pub async fn seed_demo_catalog(&self) -> Result<usize, CoreError> {
        let meta = RequestMeta::new(Some("demo-seed".into()), None);
        let mut created = 0;
        let catalog: Vec<DemoResource> =
            serde_json::from_str(CATALOG).map_err(|e| CoreError::Internal(format!("demo catalog: {e}")))?;
        let system = seeder();
        // Index once at the end rather than after each of the ~60 changes.
        let unindexed = Core { search: None, ..self.clone() };
        for d in &catalog {
            if self.store.find_resource(&d.code).await?.is_some() {
                continue;
            }
            let r = unindexed.create_resource(&meta, &system, &d.input()).await?;
            if d.state.as_deref() != Some("draft") {
                unindexed.publish_resource(&meta, &system, &r.id.to_string()).await?;
            }
            created += 1;
        }
        self.sync_search().await;
        Ok(created)
    }
}

/// The demo catalog's raw JSON (for tests and tools).
pub fn demo_catalog_json() -> Value {
    serde_json::from_str(CATALOG).unwrap_or(Value::Null)
}

impl Core {
    /// Load the demo registers into 人口基础信息 and 企业登记信息 when their tables are empty:
    /// `rows` people and `rows / 5` enterprises, about 1% defective. Returns the rows read.
    pub async fn load_demo_data(&self, rows: u64) -> Result<u64, CoreError> {
        let lake = self.lake()?.clone();
        let operator = crate::auth::operator("system");
        let meta = RequestMeta::new(Some("demo-data".into()), None);
        let mut total = 0;
        for (code, register, n, seed) in [
            ("101/000001", generate::Register::Population, rows, 11u64),
            ("102/000001", generate::Register::Enterprise, rows / 5, 12),
        ] {
            let Some(r) = self.store.find_resource(code).await? else { continue };
            if lake.version(r.id).await?.is_some() || n == 0 {
                continue;
            }
            // Generate into a pipe read by the ingest, so nothing large is held in memory.
            let (reader, mut writer) = std::io::pipe().map_err(|e| CoreError::Internal(e.to_string()))?;
            let producer = std::thread::spawn(move || {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut writer);
                generate::generate(register, n, 0.01, seed, false, &mut w)
            });
            let params =
                crate::ingest::IngestParams { idempotency_key: Some(format!("demo-{code}")), ..Default::default() };
            let (rec, _) = self
                .ingest_data(&meta, &operator, code, &params, crate::ingest::IngestBody::Stream(Box::new(reader)), None)
                .await?;
            producer
                .join()
                .map_err(|_| CoreError::Internal("demo generator panicked".into()))?
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            total += rec.report.as_ref().and_then(|v| v.get("rows_read")).and_then(|v| v.as_u64()).unwrap_or(0);
        }
        // A few hundred rows for every other published resource with items.
        let f = citydata_store::ResourceFilter::new(citydata_domain::resource::Audience::Platform);
        let all = self.store.list_resources(&f, 1000, 0).await?;
        for (n, r) in all.iter().enumerate() {
            let code = r.content.code.as_str();
            if code == "101/000001"
                || code == "102/000001"
                || r.content.items.is_empty()
                || lake.version(r.id).await?.is_some()
            {
                continue;
            }
            let csv = if code == BOUNDARY {
                spatial::boundary_csv()
            } else {
                generate::generate_for_items(&r.content.items, 300, 100 + n as u64)
            };
            let params =
                crate::ingest::IngestParams { idempotency_key: Some(format!("demo-{code}")), ..Default::default() };
            let (rec, _) = self
                .ingest_data(
                    &meta,
                    &operator,
                    code,
                    &params,
                    crate::ingest::IngestBody::Stream(Box::new(std::io::Cursor::new(csv.into_bytes()))),
                    None,
                )
                .await?;
            total += rec.report.as_ref().and_then(|v| v.get("rows_committed")).and_then(|v| v.as_u64()).unwrap_or(0);
        }
        Ok(total)
    }
}

#[cfg(test)]
mod linkage_tests;
