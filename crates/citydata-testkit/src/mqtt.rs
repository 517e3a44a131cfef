//! A real MQTT broker for tests: Debian's `mosquitto` on a free loopback port. Without the
//! binary a test skips, except under `CI=true`, where it fails (`.ci/run` installs it).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn binary() -> Option<&'static str> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"].into_iter().find(|p| std::path::Path::new(p).exists())
}

impl Broker {
    /// Start a broker, or `None` (skip) when `mosquitto` is not installed and `CI` is not set.
    pub fn start_or_skip(test: &str) -> Option<Broker> {
        if binary().is_none() || Command::new("mosquitto_pub").arg("--help").output().is_err() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{test}: mosquitto and mosquitto_pub are required under CI=true (apt-get install mosquitto mosquitto-clients)"
                );
            }
            eprintln!("{test}: skipped, mosquitto is not installed");
            return None;
        }
        let mut b = Broker { port: free_port(), child: None, dir: tempfile::tempdir().expect("temp dir") };
        b.start();
        Some(b)
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// (Re)start on the same port. Loopback only; unlimited in-flight messages, so a batch can
    /// hold more than mosquitto's default 20 unacknowledged QoS 1 messages; no persistence, so
    /// a restart forgets sessions and subscriptions.
    pub fn start(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 0\nmax_queued_messages 100000\npersistence false\n",
                self.port
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(binary().expect("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not listen on port {}", self.port);
    }

    /// Kill the broker (as a crash would) and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Publish each payload (one line each, no newlines inside) to `topic` at QoS 1 and wait
    /// until the broker has them.
    pub fn publish(&self, topic: &str, payloads: &[String]) {
        let mut child = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1", "-t", topic, "-l"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("mosquitto_pub");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            for p in payloads {
                assert!(!p.contains('\n'), "one message per line");
                writeln!(stdin, "{p}").expect("write to mosquitto_pub");
            }
        }
        let status = child.wait().expect("mosquitto_pub");
        assert!(status.success(), "mosquitto_pub failed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
