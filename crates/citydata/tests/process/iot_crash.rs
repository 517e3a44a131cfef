//! A server process that dies while it consumes an MQTT stream loses and doubles nothing
//! (issue #19): the real `citydata serve --demo` binary consumes the demo's air-quality stream
//! from a real mosquitto and aborts (as `kill -9` would: no destructor, no acknowledgement)
//! first right after receiving a message, then right after its Delta commit and before the
//! acknowledgements (`CITYDATA_CRASH_AT`). Each time a new process takes the stream over, the
//! broker delivers the unacknowledged messages again, and the table ends with exactly the
//! published readings, once each. Runs on SQLite, and on PostgreSQL when
//! `CITYDATA_TEST_DATABASE_URL` is set.

use super::support::{free_port, wait_until_up};
use citydata_testkit::mqtt::Broker;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AIR: &str = "203%2F000001";

fn start(d: &Path, db: &str, port: u16, broker: &str, crash_at: Option<&str>) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_citydata"));
    c.arg("--data-dir").arg(d).current_dir(d);
    c.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DATABASE_URL", db)
        .env("CITYDATA__DEMO", "true")
        .env("CITYDATA__DEMO_ROWS", "0")
        .env("CITYDATA__DEMO_MQTT_URL", broker)
        .env("CITYDATA__INGEST_LEASE_SECS", "2")
        .env_remove("CITYDATA_CRASH_AT")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(p) = crash_at {
        c.env("CITYDATA_CRASH_AT", p);
    }
    let mut child = c.spawn().unwrap();
    wait_until_up(port, &mut child);
    child
}

/// Wait for the process to end by itself (its crash point), at most a minute.
fn wait_for_exit(child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "{what}: the server exited cleanly instead of aborting");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("{what}: the server did not reach its crash point");
}

fn stop(child: &mut Child) {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();
}

async fn admin(port: u16) -> (reqwest::Client, String) {
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let r = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": citydata_testkit::DEMO_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    (c, base)
}

/// The demo stream's counters on this node, once it consumes it.
async fn stats(c: &reqwest::Client, base: &str) -> Value {
    let list: Value = c.get(format!("{base}/api/v1/streams")).send().await.unwrap().json().await.unwrap();
    let id = list.as_array().and_then(|a| a.first()).and_then(|s| s["id"].as_str()).expect("the demo stream");
    let v: Value = c.get(format!("{base}/api/v1/streams/{id}")).send().await.unwrap().json().await.unwrap();
    v["stats"].clone()
}

async fn until_subscribed(port: u16) {
    let (c, base) = admin(port).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if stats(&c, &base).await["subscriptions"].as_u64().unwrap_or(0) >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stream did not subscribe");
}

/// (station, time) of every row of 空气质量实时监测数据, read anonymously (the resource is open).
async fn readings(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}/api/v1/resources/{AIR}/rows?limit=1000");
    let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let mut out: Vec<(String, String)> = v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|r| (r["zdbm"].as_str().unwrap_or("").to_string(), r["jcsj"].to_string()))
        .collect();
    out.sort();
    out
}

fn round(hour: u32) -> Vec<(String, String)> {
    citydata_core::iot::demo::STATIONS
        .iter()
        .map(|(id, ..)| {
            (
                format!("citydata/air/{id}"),
                format!(r#"{{"time":"2026-12-04T{hour:02}:00:00+08:00","aqi":{},"pm25":30,"pm10":50}}"#, 40 + hour),
            )
        })
        .collect()
}

fn publish(broker: &Broker, msgs: &[(String, String)]) {
    for (topic, payload) in msgs {
        broker.publish(topic, std::slice::from_ref(payload));
    }
}

#[test]
fn a_server_killed_while_consuming_a_stream_loses_and_doubles_no_reading() {
    let Some(broker) = Broker::start_or_skip("a_server_killed_while_consuming_a_stream") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(citydata_testkit::fresh_database_url(d));
    let port = free_port();
    let url = broker.url();

    // 1. Killed as soon as the first message of the first round arrives: nothing committed.
    let mut server = start(d, &db, port, &url, Some("iot.received"));
    rt.block_on(until_subscribed(port));
    publish(&broker, &round(8));
    wait_for_exit(&mut server, "iot.received");

    // 2. A new process takes the stream over; the broker delivers the round again; the process
    //    commits it and is killed before it acknowledges anything.
    let mut server = start(d, &db, port, &url, Some("iot.committed"));
    wait_for_exit(&mut server, "iot.committed");

    // 3. A healthy process: the round comes a third time and is not written twice; a second
    //    round arrives while it runs.
    let mut server = start(d, &db, port, &url, None);
    rt.block_on(until_subscribed(port));
    publish(&broker, &round(9));
    let expected: Vec<(String, String)> = {
        let mut e: Vec<(String, String)> = [8, 9]
            .iter()
            .flat_map(|h| {
                citydata_core::iot::demo::STATIONS
                    .iter()
                    .map(move |(id, ..)| (id.to_string(), format!("\"2026-12-04T{h:02}:00:00+08:00\"")))
            })
            .collect();
        e.sort();
        e
    };
    let got = rt.block_on(async {
        let (c, base) = admin(port).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = stats(&c, &base).await;
            // Both rounds handled: the redelivered one quarantined as duplicates of the table's
            // keys, the new one committed.
            if s["committed"].as_u64() >= Some(6) && s["pending"] == 0 && s["received"].as_u64() >= Some(12) {
                break;
            }
            assert!(Instant::now() < deadline, "the stream did not settle: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        readings(port).await
    });
    stop(&mut server);
    assert_eq!(got.len(), 12, "{got:?}");
    // The times are read back as the table shows them; compare stations and count per hour.
    let stations = |g: &[(String, String)]| g.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>();
    assert_eq!(stations(&got), stations(&expected));
    let mut distinct = got.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 12, "a reading was written twice: {got:?}");
}
