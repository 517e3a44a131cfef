//! A real OpenID provider for tests: `scripts/oidc-mock.mjs` running the npm package
//! `oauth2-mock-server` 8.x under Node (discovery, JWKS, authorization code with PKCE, signed
//! ID tokens). The package is found under `CITYDATA_OIDC_MOCK` (an npm prefix; default
//! `~/.cache/citydata-oidc-mock`, where `.ci/run` installs it). Without Node or the package a
//! test skips, except under `CI=true`, where it fails.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub struct Provider {
    /// The issuer URL (`http://localhost:PORT`).
    pub issuer: String,
    pub port: u16,
    /// The signing key's id (changes at `rotate`).
    pub kid: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn prefix() -> PathBuf {
    match std::env::var_os("CITYDATA_OIDC_MOCK") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/citydata-oidc-mock"),
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/oidc-mock.mjs")
}

impl Provider {
    /// Start a provider, or `None` (skip) when Node or the package is missing and `CI` is not
    /// `true`.
    pub fn start_or_skip(test: &str) -> Option<Provider> {
        let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
        let package = prefix().join("node_modules/oauth2-mock-server/package.json").exists();
        if !node || !package {
            let why =
                if node { "the npm package oauth2-mock-server is not installed" } else { "node is not installed" };
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{test}: {why}; under CI=true it is required (npm install --prefix ~/.cache/citydata-oidc-mock oauth2-mock-server@8, or set CITYDATA_OIDC_MOCK)"
                );
            }
            eprintln!("{test}: skipped, {why}");
            return None;
        }
        let mut child = Command::new("node")
            .arg(script())
            .env("CITYDATA_OIDC_MOCK", prefix())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node scripts/oidc-mock.mjs");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the mock provider's first line");
        let hello: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("mock provider said {line:?}: {e}"));
        Some(Provider {
            issuer: hello["issuer"].as_str().expect("issuer").to_string(),
            port: hello["port"].as_u64().expect("port") as u16,
            kid: hello["kid"].as_str().unwrap_or_default().to_string(),
            child,
            stdin,
            stdout,
        })
    }

    fn command(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").expect("write to the mock provider");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("the mock provider's answer");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("mock provider said {line:?}: {e}"));
        assert_eq!(v["ok"], true, "mock provider refused {cmd}: {v}");
        v
    }

    /// Claims added to every ID token from now on.
    pub fn set_claims(&mut self, claims: Value) {
        self.command(json!({"cmd": "claims", "claims": claims}));
    }

    /// Spoil the next ID token: `wrong_nonce`, `wrong_aud`, `expired` or `tamper`.
    pub fn spoil_next(&mut self, mode: &str) {
        self.command(json!({"cmd": "next", "mode": mode}));
    }

    /// A new signing key with a new `kid`; the old key is no longer published.
    pub fn rotate(&mut self) {
        let v = self.command(json!({"cmd": "rotate"}));
        self.kid = v["kid"].as_str().unwrap_or_default().to_string();
    }

    /// Stop answering (the provider is down).
    pub fn stop(&mut self) {
        self.command(json!({"cmd": "stop"}));
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
