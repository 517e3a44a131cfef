//! `citydata evaluate`: the evaluation as JSON or an XLSX workbook from the command line, and
//! a bad period refused by name.

use super::support::{free_port, wait_until_up};
use citydata_domain::evaluation::Period;
use std::path::Path;
use std::process::{Command, Stdio};

fn citydata(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citydata"));
    c.arg("--data-dir").arg(data_dir);
    c.env_remove("CITYDATA__DATABASE_URL").current_dir(data_dir);
    c
}

#[test]
fn evaluate_prints_json_writes_xlsx_and_refuses_bad_periods() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The demo city: departments, users, catalog.
    let port = free_port();
    let mut child = citydata(d)
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DEMO_ROWS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_up(port, &mut child);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();

    let o = citydata(d).args(["evaluate", "--period", "2026-Q9"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("period"), "{}", String::from_utf8_lossy(&o.stderr));
    let now = Period::quarter_of(chrono::Utc::now()).to_string();
    let o = citydata(d).args(["evaluate", "--period", &now]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["period"], now);
    assert_eq!(v["rules_version"], 0);
    assert_eq!(v["departments"].as_array().unwrap().len(), 8, "the demo's departments");
    assert!(v["departments"][0]["indicators"]["catalog_resources"]["value"].as_f64().unwrap() > 0.0);
    let o = citydata(d).args(["evaluate", "--period", &now, "--out", "e.xlsx"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(d.join("e.xlsx")).unwrap().starts_with(b"PK"), "an XLSX (zip) file");
}
