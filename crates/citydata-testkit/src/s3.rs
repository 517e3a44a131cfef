//! A real S3-compatible server for tests: `moto_server` from PyPI's `moto[server]` (installed
//! by `.ci/run` into the CI virtual environment beside `CITYDATA_PYTHON`) on a free loopback
//! port, in memory. It honours `If-None-Match: *`, the conditional put Delta commits rely on.
//! Without it a test skips, except under `CI=true`, where it fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    pub port: u16,
    child: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `moto_server` beside `CITYDATA_PYTHON`, else on `PATH`.
fn binary() -> Option<std::path::PathBuf> {
    let beside = std::env::var("CITYDATA_PYTHON")
        .ok()
        .and_then(|p| std::path::Path::new(&p).parent().map(|d| d.join("moto_server")))
        .filter(|p| p.exists());
    beside.or_else(|| {
        Command::new("moto_server")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
            .map(|_| "moto_server".into())
    })
}

impl Moto {
    /// Start a server, or `None` (skip) when `moto_server` is missing and `CI` is not `true`.
    pub fn start_or_skip(test: &str) -> Option<Moto> {
        let Some(bin) = binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{test}: moto_server is required under CI=true (pip install 'moto[server]' into CITYDATA_PYTHON's venv)"
                );
            }
            eprintln!("{test}: skipped, moto_server is not installed");
            return None;
        };
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut m = Moto { port, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("moto_server exited: {status}");
            }
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(m)
    }

    /// Freeze the server (SIGSTOP): connections are accepted by the kernel and never answered,
    /// as with a hung or partitioned object store. [`Moto::resume`] thaws it with its state.
    pub fn pause(&self) {
        signal(self.child.id(), "-STOP");
    }

    pub fn resume(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Create `bucket` (moto takes an unsigned `PUT /bucket`).
    pub async fn create_bucket(&self, bucket: &str) {
        let r = reqwest::Client::new().put(format!("{}/{bucket}", self.endpoint())).send().await.expect("moto");
        assert!(r.status().is_success(), "create bucket {bucket}: {}", r.status());
    }

    /// A fresh bucket with a random name, as a lake for [`crate::SpawnOptions::s3`].
    pub async fn lake(&self) -> S3Lake {
        let bucket = format!("lake-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        self.create_bucket(&bucket).await;
        S3Lake { lake_url: format!("s3://{bucket}/citydata"), endpoint: self.endpoint() }
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

impl Drop for Moto {
    fn drop(&mut self) {
        signal(self.child.id(), "-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lake on an S3-compatible endpoint (plain http, any credentials, path style).
#[derive(Debug, Clone)]
pub struct S3Lake {
    pub lake_url: String,
    pub endpoint: String,
}

impl S3Lake {
    /// Point `settings` at this lake: what an operator writes in `[lake_s3]`.
    pub fn configure(&self, settings: &mut citydata_server::Settings) {
        settings.lake_url = Some(self.lake_url.clone());
        let s3 = &mut settings.lake_s3;
        s3.endpoint = Some(self.endpoint.clone());
        s3.access_key_id = Some("citydata-test".into());
        s3.secret_access_key = Some("citydata-test-secret".into());
        s3.allow_http = true;
        // A stopped server fails a request in seconds, not after three minutes of retries.
        s3.max_retries = Some(2);
        s3.retry_timeout_secs = Some(10);
        s3.timeout_secs = Some(5);
    }
}
