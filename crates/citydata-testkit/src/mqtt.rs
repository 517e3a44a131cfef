//! A real MQTT broker for tests: Debian's `mosquitto` on a free loopback port. Without the
//! binary a test skips, except under `CI=true`, where it fails (`.ci/run` installs it).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Broker {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// With TLS: the PEM of the certificate authority that signed the broker's certificate.
    pub ca_pem: Option<String>,
    /// With a password file: the one user and password the broker accepts.
    login: Option<(String, String)>,
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
        let mut b = Broker {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            ca_pem: None,
            login: None,
        };
        b.start();
        Some(b)
    }

    /// A broker that speaks only TLS, with a certificate for `127.0.0.1` and `localhost`
    /// signed by a certificate authority made for it (`ca_pem`), and that accepts only
    /// `user` with `password` (a mosquitto password file).
    pub fn start_tls_or_skip(test: &str, user: &str, password: &str) -> Option<Broker> {
        let mut b = Self::start_or_skip(test)?;
        b.stop();
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "citydata test CA");
        let ca = ca.self_signed(&ca_key).expect("CA certificate");
        let key = rcgen::KeyPair::generate().expect("server key");
        let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params")
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        std::fs::write(b.dir.path().join("server.pem"), server.pem()).expect("write server.pem");
        std::fs::write(b.dir.path().join("server.key"), key.serialize_pem()).expect("write server.key");
        std::fs::write(b.dir.path().join("ca.pem"), ca.pem()).expect("write ca.pem");
        let status = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg("-c")
            .arg(b.dir.path().join("passwd"))
            .args([user, password])
            .status()
            .expect("mosquitto_passwd");
        assert!(status.success(), "mosquitto_passwd failed");
        b.ca_pem = Some(ca.pem());
        b.login = Some((user.to_string(), password.to_string()));
        b.start();
        Some(b)
    }

    /// `mqtt://127.0.0.1:PORT`, or `mqtts://` for a TLS broker.
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// (Re)start on the same port. Loopback only; unlimited in-flight messages, so a batch can
    /// hold more than mosquitto's default 20 unacknowledged QoS 1 messages; no persistence, so
    /// a restart forgets sessions and subscriptions.
    pub fn start(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        let mut text = format!(
            "listener {} 127.0.0.1\nmax_inflight_messages 0\nmax_queued_messages 100000\npersistence false\n",
            self.port
        );
        let d = self.dir.path().display();
        if self.ca_pem.is_some() {
            text.push_str(&format!("certfile {d}/server.pem\nkeyfile {d}/server.key\n"));
        }
        if self.login.is_some() {
            text.push_str(&format!("allow_anonymous false\npassword_file {d}/passwd\n"));
        } else {
            text.push_str("allow_anonymous true\n");
        }
        std::fs::write(&conf, text).expect("write mosquitto.conf");
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
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1", "-t", topic, "-l"]);
        if self.ca_pem.is_some() {
            cmd.arg("--cafile").arg(self.dir.path().join("ca.pem"));
        }
        if let Some((u, p)) = &self.login {
            cmd.args(["-u", u, "-P", p]);
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("mosquitto_pub");
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
