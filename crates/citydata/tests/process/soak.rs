//! `citydata bench soak`, short: the mixed workload runs against a server process without
//! errors, the report covers every operation with percentiles per window and memory samples
//! of the server process; and a memory slope over the limit makes the command fail.

use serde_json::Value;
use std::process::Command;

fn soak(dir: &std::path::Path, extra: &[&str]) -> (std::process::Output, Value) {
    let json = dir.join("soak.json");
    let o = Command::new(env!("CARGO_BIN_EXE_citydata"))
        .args(["bench", "soak", "--seconds", "20", "--rate", "5", "--window-seconds", "10", "--demo-rows", "300"])
        .arg("--json")
        .arg(&json)
        .arg("--dir")
        .arg(dir.join("data"))
        .args(extra)
        .env_remove("CITYDATA__DATABASE_URL")
        .current_dir(dir)
        .output()
        .expect("run citydata bench soak");
    let text =
        std::fs::read_to_string(&json).unwrap_or_else(|_| panic!("no JSON: {}", String::from_utf8_lossy(&o.stderr)));
    (o, serde_json::from_str(&text).unwrap())
}

#[test]
fn a_short_soak_runs_clean_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (o, v) = soak(dir.path(), &[]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(v["error_count"], 0, "{out}");
    assert_eq!(v["passed"], true);
    for op in [
        "catalog_list",
        "catalog_get",
        "search",
        "rows",
        "rows_granted",
        "export",
        "ingest",
        "login",
        "request",
        "approve",
    ] {
        let t = &v["totals"][op];
        assert!(t["count"].as_u64().unwrap_or(0) > 0, "{op} ran: {t}");
        assert!(t["p50_ms"].as_f64().unwrap() <= t["p99_ms"].as_f64().unwrap(), "{op}: {t}");
        assert!(out.contains(op), "the table shows {op}");
    }
    // Open loop at 5/s for 20 s: 100 operations sent (requests bring an approval each).
    assert_eq!(v["operations_sent"], 100);
    let windows = v["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "two windows of 10 s");
    assert!(windows.iter().all(|w| w["operations"]["catalog_list"]["count"].as_u64().unwrap_or(0) > 0));
    let samples = v["rss"]["samples"].as_array().unwrap();
    assert!(samples.len() >= 10, "RSS sampled about every second: {}", samples.len());
    assert!(samples.iter().all(|s| s[1].as_u64().unwrap() > 10_000_000), "a real process's RSS");
    assert_eq!(v["rss"]["slope_judged"], false, "20 s is too short to judge the slope");
    assert!(out.contains("not judged"), "{out}");
}

#[test]
fn a_slope_over_the_limit_fails_the_soak() {
    let dir = tempfile::tempdir().unwrap();
    // Any real slope is above -1e9 MB per 10 minutes: judged, it is over the limit.
    let (o, v) =
        soak(dir.path(), &["--slope-min-seconds", "5", "--warmup-seconds", "0", "--max-slope-mb", "-1000000000"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(v["rss"]["slope_judged"], true);
    assert_eq!(v["passed"], false);
    assert_eq!(v["error_count"], 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("OVER THE LIMIT"));
}
