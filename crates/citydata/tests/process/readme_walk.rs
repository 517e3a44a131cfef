//! The README's quick tour, run as it is written: the `sh` block between `<!-- walk:begin -->`
//! and `<!-- walk:end -->` goes to `bash -euo pipefail` against `citydata serve --demo` (every
//! `curl` there uses `-f`, so any 4xx/5xx fails the walk). A documented command that stops
//! working fails this test.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tour() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("<!-- walk:begin -->").expect("the README marks its walk");
    let end = readme.find("<!-- walk:end -->").expect("the README marks its walk's end");
    let block = &readme[start..end];
    let body = block.split_once("```sh\n").expect("a sh block").1;
    body.rsplit_once("```").expect("a closed block").0.to_string()
}

#[test]
fn the_readme_quick_tour_runs_with_curl_alone() {
    let script = tour();
    assert!(script.lines().filter(|l| l.trim_start().starts_with("curl")).count() >= 15, "{script}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_citydata"))
        .arg("--data-dir")
        .arg(d)
        .current_dir(d)
        .env_remove("CITYDATA__DATABASE_URL")
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("CITYDATA__DEMO_ROWS", "2000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(server.try_wait().unwrap().is_none(), "the server exited");
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("BASE", format!("http://127.0.0.1:{port}"))
        .current_dir(d)
        .output()
        .expect("bash and curl are installed");
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the walk failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // It did what it says: a token was made, rows were read masked, a CSV was downloaded.
    assert!(stdout.contains("\"username\":\"wjw-analyst\""), "{stdout}");
    assert!(stdout.contains("\"next_cursor\""), "{stdout}");
    let csv = std::fs::read_to_string(d.join("people.csv")).unwrap();
    assert!(csv.lines().count() > 1 && csv.contains('*'), "masked rows: {}", &csv[..csv.len().min(300)]);
    assert!(std::fs::read_to_string(d.join("openapi.json")).unwrap().contains("\"openapi\""));
}
