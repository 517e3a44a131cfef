//! The OpenAPI document against a real client: schemathesis (PyPI) generates requests for every
//! operation from the document, sends them to a server with the demo data, and checks that no
//! answer is a 5xx, every status is documented, and every body matches its schema. `.ci/run`
//! installs schemathesis in its virtual environment and sets `CITYDATA_PYTHON`; under `CI=true`
//! a missing schemathesis fails the test instead of skipping it.

use citydata_core::demo::generate::{Register, generate_listing};
use citydata_testkit::spawn_app;

/// Run schemathesis over every operation, with `auth` as the Authorization header when given.
async fn run(py: String, address: String, auth: Option<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        // schemathesis keeps a cache in its working directory: keep it out of the source tree.
        let scratch = tempfile::tempdir().expect("temp dir");
        let mut cmd = std::process::Command::new(py);
        cmd.current_dir(scratch.path());
        cmd.args(["-m", "schemathesis.cli", "run", &format!("{address}/api/v1/openapi.json")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            // Few examples per operation, the same ones on every run: a regression test, not a
            // fuzzing campaign (`citydata bench` is where long runs belong).
            .args(["--max-examples", "5", "--generation-deterministic", "--no-shrink"])
            .args(["--request-timeout", "30", "--output-truncate", "false", "--warnings", "off"])
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_HOOKS", "");
        if let Some(a) = auth {
            cmd.args(["--header", &format!("Authorization: Bearer {a}")]);
        }
        let out = cmd.output().expect("run schemathesis");
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn schemathesis_finds_no_5xx_undocumented_status_or_schema_violation() {
    let Some(py) = citydata_testkit::python_with("schemathesis") else { return };
    let app = spawn_app().await;
    // Data behind the reads, so that rows, changes, versions and quarantine answer with bodies.
    let scj = app.login("scjgj-steward").await;
    let mut ent = Vec::new();
    generate_listing(Register::Enterprise, 40, 0.05, 7, false, &mut ent).unwrap();
    let r = scj.post(app.url("/api/v1/resources/102%2F000001/data")).body(ent).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // A steward (most routes answer with bodies) and an anonymous caller (the public surface).
    for auth in [Some(app.token("scjgj-steward").await), None] {
        let who = if auth.is_some() { "scjgj-steward" } else { "anonymous" };
        let (ok, text) = run(py.clone(), app.address.clone(), auth).await;
        assert!(ok, "schemathesis as {who} found failures:\n{text}");
        assert!(text.contains("Tested:"), "schemathesis as {who} did not run:\n{text}");
    }
}
