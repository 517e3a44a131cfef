//! `citydata verify`: 核验 from the terminal. A department asks for a verification grant with
//! `request create --kind verify`, the provider approves it, and the analyst checks records
//! given on the command line or in a CSV file; the answers are statuses, never values.

use super::support::{free_port, wait_until_up};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn citydata(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citydata"));
    c.arg("--data-dir").arg(data_dir);
    c.env_remove("CITYDATA__DATABASE_URL").current_dir(data_dir);
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run citydata")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A valid ID number no demo row has (born 2015; the demo's births end in 2009).
fn unknown_id() -> String {
    let first17 = "32120320150301007";
    format!("{first17}{}", citydata_domain::identifiers::id_check_char(first17).unwrap())
}

#[test]
fn verify_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
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

    let id = unknown_id();
    let record = format!("身份证号={id},姓名=王某");
    // No grant yet: refused, nothing printed on stdout.
    let o = run(citydata(d).args(["verify", "--as", "wjw-analyst", "101/000001", "--record", &record]));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("核验授权"), "{}", text(&o.stderr));
    assert!(text(&o.stdout).is_empty());

    let o = run(citydata(d).args([
        "request",
        "--as",
        "wjw-analyst",
        "create",
        "--kind",
        "verify",
        "--resource",
        "101/000001",
        "--fields",
        "身份证号,姓名",
        "--purpose",
        "就诊人员身份核验",
        "--basis",
        "《医疗机构管理条例》",
    ]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let line = text(&o.stdout);
    assert!(line.contains("\tpending\t"), "{line}");
    let request = line.split('\t').next().unwrap().trim().to_string();
    let o = run(citydata(d).args(["request", "--as", "gaj-steward", "approve", &request]));
    assert!(o.status.success(), "{}", text(&o.stderr));

    let csv = d.join("records.csv");
    let mut bad = id.clone();
    let c = bad.pop().unwrap();
    bad.push(if c == '0' { '1' } else { '0' });
    std::fs::write(&csv, format!("身份证号,姓名\n{bad},李某\n")).unwrap();
    let o = run(citydata(d).args([
        "verify",
        "--as",
        "wjw-analyst",
        "101/000001",
        "--record",
        &record,
        "--file",
        csv.to_str().unwrap(),
        "--compare",
        "姓名",
    ]));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["results"][0]["status"], "not_found", "{v}");
    assert_eq!(v["results"][1]["status"], "invalid", "{v}");
    assert_eq!(v["quota_left"], 9998);
    // A malformed --record names the flag.
    let o = run(citydata(d).args(["verify", "--as", "wjw-analyst", "101/000001", "--record", "身份证号"]));
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("--record"), "{}", text(&o.stderr));
}
