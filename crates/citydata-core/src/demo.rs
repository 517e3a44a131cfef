//! Demo content for `serve --demo`: the city of 泰州 (Taizhou, 321200), its departments and
//! demo users. Idempotent: what exists already is left alone.

use crate::accounts::{MembershipInput, NewDepartmentInput, NewUserInput};
use crate::{Core, CoreError, RequestMeta};
use citydata_domain::dept::DeptCode;
use citydata_domain::user::Username;

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

/// What seeding created this time.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub departments_created: usize,
    pub users_created: usize,
}

impl Core {
    /// Seed the demo departments and users; existing ones are kept as they are.
    pub async fn seed_demo(&self) -> Result<SeedReport, CoreError> {
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
}
