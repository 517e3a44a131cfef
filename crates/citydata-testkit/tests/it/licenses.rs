//! 电子证照核验 (issue #23 item 5): anyone verifies a license by number and holder and gets the
//! status and the issuing department with a receipt signed by the platform's Ed25519 key. The
//! receipt is checked with the published key by an independent implementation (Python
//! `cryptography`, and ed25519-dalek on the key fetched over HTTP), and a tampered receipt
//! fails. The attacker: reads other items through the answers, tells a wrong holder from an
//! unknown number, walks sequential numbers, floods from one address over two nodes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use citydata_testkit::{SpawnOptions, TestApp, assert_error, new_client, spawn_app_with};
use serde_json::{Value, json};

use crate::support::audit_entries;

const REGISTER: &str = "105%2F000001";

/// Four licenses of the demo's 营业执照电子证照: valid, revoked, expired, valid without an end
/// (with full-width parentheses in the holder's name). The numbers differ early, so that no two
/// are neighbours under the enumeration rule.
const CSV: &str = "证照编号,持证主体,证照状态,发证日期,有效期至,发证机关\n\
    91321202A00000011X,泰州市海陵区甲科技有限公司,有效,2020-01-01,2099-12-31,泰州市海陵区市场监督管理局\n\
    91321203B00000022Y,泰州市高港区乙贸易有限公司,吊销,2019-05-06,2098-01-31,泰州市高港区市场监督管理局\n\
    91321204C00000033Z,泰州市姜堰区丙餐饮店,有效,2015-03-04,2020-12-31,泰州市姜堰区市场监督管理局\n\
    91321281D00000044W,泰州某某（集团）有限公司,有效,2018-07-08,,泰州市市场监督管理局\n";

/// What no answer may contain: every other item value of the register.
const HIDDEN: &[&str] = &[
    "2020-01-01",
    "2099-12-31",
    "2019-05-06",
    "2098-01-31",
    "2015-03-04",
    "2020-12-31",
    "2018-07-08",
    "吊销",
    "乙贸易",
    "丙餐饮",
    "91321203B",
    "91321204C",
    "91321281D",
];

fn generous(s: &mut citydata_server::settings::Settings) {
    s.license_verify_per_minute = 10_000;
}

async fn app_with_licenses(configure: fn(&mut citydata_server::settings::Settings)) -> TestApp {
    let app = spawn_app_with(SpawnOptions { configure: Some(configure), ..Default::default() }).await;
    let scj = app.login("scjgj-steward").await;
    let url = app.url(&format!("/api/v1/resources/{REGISTER}/data?mode=replace"));
    let r = scj.post(url).body(CSV).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    app
}

async fn ask(app: &TestApp, c: &reqwest::Client, number: &str, holder: &str) -> reqwest::Response {
    c.post(app.url("/api/v1/licenses/verify")).json(&json!({"number": number, "holder": holder})).send().await.unwrap()
}

async fn answer(app: &TestApp, number: &str, holder: &str) -> Value {
    let r = ask(app, &new_client(), number, holder).await;
    assert_eq!(r.status(), 200, "{number}");
    let text = r.text().await.unwrap();
    // What the caller typed comes back in the receipt; nothing else of the register does.
    for h in HIDDEN.iter().filter(|h| !number.to_uppercase().contains(*h) && !holder.contains(*h)) {
        assert!(!text.contains(h), "the answer for {number} leaks {h}: {text}");
    }
    serde_json::from_str(&text).unwrap()
}

/// The answer without what differs between two calls (time and signature).
fn comparable(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("verified_at");
    v.as_object_mut().unwrap().remove("receipt");
    v
}

fn dalek_verifies(public_key_b64: &str, payload: &str, signature_b64: &str) -> bool {
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    let key: [u8; 32] = B64.decode(public_key_b64).unwrap().try_into().unwrap();
    let Ok(sig) = B64.decode(signature_b64) else { return false };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else { return false };
    VerifyingKey::from_bytes(&key).unwrap().verify(payload.as_bytes(), &Signature::from_bytes(&sig)).is_ok()
}

const PY_VERIFY: &str = r#"
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.exceptions import InvalidSignature
key = load_pem_public_key(open(sys.argv[1], "rb").read())
receipt = json.load(open(sys.argv[2]))
def ok(payload, sig):
    try:
        key.verify(base64.b64decode(sig), payload.encode("utf-8"))
        return True
    except InvalidSignature:
        return False
payload = receipt["payload"]
tampered = payload.replace('"status":"valid"', '"status":"revoked"')
assert tampered != payload
print(json.dumps({"genuine": ok(payload, receipt["signature"]), "tampered": ok(tampered, receipt["signature"]),
                  "status": json.loads(payload)["status"]}))
"#;

#[tokio::test]
async fn anyone_verifies_a_license_and_a_third_party_checks_the_receipt() {
    let app = app_with_licenses(generous).await;
    // The four statuses, anonymously; the issuing department and authority, nothing else.
    let a = answer(&app, "91321202A00000011X", "泰州市海陵区甲科技有限公司").await;
    assert_eq!(a["status"], "valid", "{a}");
    assert_eq!(a["issuing_department"]["code"], "scjgj");
    assert!(a["issuing_department"]["name"].as_str().unwrap().contains("市场监督管理局"), "{a}");
    assert_eq!(a["issuer"], "泰州市海陵区市场监督管理局");
    assert_eq!(a["license_type"], "营业执照电子证照");
    assert_eq!(answer(&app, "91321203B00000022Y", "泰州市高港区乙贸易有限公司").await["status"], "revoked");
    assert_eq!(answer(&app, "91321204C00000033Z", "泰州市姜堰区丙餐饮店").await["status"], "expired");
    // Half-width parentheses, spaces and a lower-case number are the same license.
    let d = answer(&app, " 91321281d00000044w", "泰州某某(集团) 有限公司").await;
    assert_eq!(d["status"], "valid", "no end date is 长期: {d}");

    // A wrong holder for an existing number answers exactly like an unknown number.
    let wrong = answer(&app, "91321202A00000011X", "泰州市海陵区丁科技有限公司").await;
    let unknown = answer(&app, "91321299E00000055V", "泰州市海陵区甲科技有限公司").await;
    assert_eq!(wrong["status"], "not_found");
    assert_eq!(comparable(wrong.clone()), comparable(unknown.clone()), "a number alone confirms nothing");
    let keys = |v: &Value| {
        let p: Value = serde_json::from_str(v["receipt"]["payload"].as_str().unwrap()).unwrap();
        p.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
    };
    assert_eq!(keys(&wrong), keys(&unknown), "the receipts have the same shape too");
    assert!(wrong["issuing_department"].is_null() && wrong["issuer"].is_null());

    // The receipt: canonical JSON of the answer and the time, signed.
    let receipt = &a["receipt"];
    let payload = receipt["payload"].as_str().unwrap();
    let p: Value = serde_json::from_str(payload).unwrap();
    assert_eq!(p["status"], "valid");
    assert_eq!(p["license_number"], "91321202A00000011X");
    assert_eq!(p["holder"], "泰州市海陵区甲科技有限公司");
    assert_eq!(p["issuing_department"], "scjgj");
    assert_eq!(p["verified_at"], a["verified_at"]);
    assert_eq!(serde_json::to_string(&p).unwrap(), payload, "keys sorted, no spaces");
    let key: Value =
        new_client().get(app.url("/api/v1/licenses/receipt-key")).send().await.unwrap().json().await.unwrap();
    assert_eq!(key["algorithm"], "Ed25519");
    assert_eq!(key["key_id"], receipt["key_id"]);
    let public = key["public_key"].as_str().unwrap();
    let sig = receipt["signature"].as_str().unwrap();
    assert!(dalek_verifies(public, payload, sig), "the receipt verifies with the published key");
    let tampered = payload.replace("\"status\":\"valid\"", "\"status\":\"revoked\"");
    assert_ne!(tampered, payload);
    assert!(!dalek_verifies(public, &tampered, sig), "a changed answer fails");
    let mut other_sig = B64.decode(sig).unwrap();
    other_sig[0] ^= 1;
    assert!(!dalek_verifies(public, payload, &B64.encode(other_sig)), "a changed signature fails");
    // The key pair lives in the data directory, private.
    let seed = std::fs::read_to_string(app.data_dir.path().join("receipt_key")).unwrap();
    assert_eq!(seed.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.data_dir.path().join("receipt_key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // An independent implementation: Python `cryptography` with the PEM the platform publishes.
    let pem_resp = new_client().get(app.url("/api/v1/licenses/receipt-key.pem")).send().await.unwrap();
    assert_eq!(pem_resp.headers()["content-type"], "application/x-pem-file");
    let pem = pem_resp.text().await.unwrap();
    assert_eq!(pem, key["pem"].as_str().unwrap());
    if let Some(python) = citydata_testkit::python_with("cryptography") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.pem"), &pem).unwrap();
        std::fs::write(dir.path().join("receipt.json"), receipt.to_string()).unwrap();
        std::fs::write(dir.path().join("check.py"), PY_VERIFY).unwrap();
        let out = std::process::Command::new(python)
            .arg(dir.path().join("check.py"))
            .arg(dir.path().join("key.pem"))
            .arg(dir.path().join("receipt.json"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v, json!({"genuine": true, "tampered": false, "status": "valid"}));
    }

    // Bad input names the field.
    let r = ask(&app, &new_client(), " ", "某公司").await;
    assert_eq!(assert_error(r, 400, "validation_failed").await["error"]["details"]["fields"][0]["field"], "number");
    let r = ask(&app, &new_client(), "91321202A00000011X", "").await;
    assert_eq!(assert_error(r, 400, "validation_failed").await["error"]["details"]["fields"][0]["field"], "holder");

    // Audited with the number hashed; neither the number nor the holder in the log.
    let entries = audit_entries(&app, "license.verify").await;
    assert!(entries.len() >= 8, "{entries:?}");
    let log = serde_json::to_string(&entries).unwrap();
    for v in ["91321202A00000011X", "泰州市海陵区甲科技有限公司", "泰州市海陵区丁科技有限公司"]
    {
        assert!(!log.contains(v), "the audit log holds {v}");
    }
    assert!(log.contains("\"status\":\"valid\"") && log.contains("\"status\":\"not_found\""), "{log}");
}

#[tokio::test]
async fn sequential_numbers_and_guessed_holders_are_refused_as_enumeration() {
    let app = app_with_licenses(generous).await;
    // Sequential numbers from one address: the sixth neighbour of the day is refused.
    for i in 2..=6 {
        let r = ask(&app, &new_client(), &format!("91321202A00000{i:02}1X"), "某公司").await;
        assert_eq!(r.status(), 200, "neighbour {i}");
    }
    let r = ask(&app, &new_client(), "91321202A00000071X", "某公司").await;
    let e = assert_error(r, 400, "validation_failed").await;
    assert_eq!(e["error"]["details"]["fields"][0]["code"], "enumeration_suspected", "{e}");
    // The valid license in that neighbourhood is refused too: guessing stops for the day.
    let r = ask(&app, &new_client(), "91321202A00000011X", "泰州市海陵区甲科技有限公司").await;
    assert_eq!(r.status(), 400);
    // Guessing the holder of one number: a repeat counts.
    for guess in ["甲", "乙", "丙", "丁", "戊"] {
        let a = answer(&app, "91321203B00000022Y", &format!("泰州市高港区{guess}公司")).await;
        assert_eq!(a["status"], "not_found");
    }
    let r = ask(&app, &new_client(), "91321203B00000022Y", "泰州市高港区乙贸易有限公司").await;
    assert_eq!(r.status(), 400, "the right name after five guesses is refused, not confirmed");
    // Another neighbourhood is untouched.
    assert_eq!(answer(&app, "91321204C00000033Z", "泰州市姜堰区丙餐饮店").await["status"], "expired");
    let refused = audit_entries(&app, "license.verify").await;
    assert!(refused.iter().any(|e| e["details"]["limit"] == "enumeration"), "{refused:?}");
}

fn three_a_minute(s: &mut citydata_server::settings::Settings) {
    s.license_verify_per_minute = 3;
}

/// Two nodes on one database share the per-address limit: three requests a minute in all.
#[tokio::test]
async fn the_per_address_limit_is_counted_across_nodes() {
    let a = app_with_licenses(three_a_minute).await;
    let b = spawn_app_with(SpawnOptions {
        database_url: Some(a.database_url.clone()),
        configure: Some(three_a_minute),
        demo: false,
        ..Default::default()
    })
    .await;
    // Distinct neighbourhoods, so only the per-minute limit applies; retried if the minute
    // turns during the four requests (the windows are calendar minutes).
    for attempt in 0..3 {
        let minute = chrono::Utc::now().format("%H:%M").to_string();
        let base = attempt * 10;
        let mut statuses = Vec::new();
        let mut last = None;
        for (i, app) in [&a, &a, &b, &b].into_iter().enumerate() {
            let r = ask(app, &new_client(), &format!("9132120{}X0000{:04}", base + i, i), "某公司").await;
            statuses.push(r.status().as_u16());
            last = Some(r);
        }
        if chrono::Utc::now().format("%H:%M").to_string() != minute {
            continue;
        }
        assert_eq!(statuses, [200, 200, 200, 429], "the fourth request of the minute, on the other node");
        let r = last.unwrap();
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_error(r, 429, "rate_limited").await;
        return;
    }
    panic!("the minute turned during every attempt");
}

/// The page: a form for anyone, the answer in words with the receipt, zh and en, no raw codes.
#[tokio::test]
async fn the_public_page_answers_in_words_with_the_receipt() {
    use crate::plain::raw_codes;
    use crate::support::{csrf_of, get};
    let app = app_with_licenses(generous).await;
    let anon = new_client();
    let (status, html) = get(&anon, &app, "/licenses/verify").await;
    assert_eq!(status, 200);
    assert!(html.contains("电子证照核验") && html.contains("name=\"number\"") && !html.contains("<script"), "{html}");
    assert!(raw_codes(&html).is_empty(), "{:?}", raw_codes(&html));
    let post = |number: &'static str, holder: &'static str| {
        let anon = anon.clone();
        let url = app.url("/licenses/verify");
        let csrf = csrf_of(&html);
        async move {
            let r = anon
                .post(url)
                .form(&[("csrf", csrf.as_str()), ("number", number), ("holder", holder)])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, out) = post("91321203B00000022Y", "泰州市高港区乙贸易有限公司").await;
    assert_eq!(status, 200, "{out}");
    assert!(out.contains("<strong>已注销或吊销</strong>") && out.contains("泰州市高港区市场监督管理局"), "{out}");
    assert!(out.contains("signature") && out.contains("/api/v1/licenses/receipt-key.pem"), "the receipt to keep");
    assert!(raw_codes(&out).is_empty(), "{:?}", raw_codes(&out));
    for h in ["2019-05-06", "2098-01-31"] {
        assert!(!out.contains(h), "{h} leaked: {out}");
    }
    let (status, out) = post("91321202A00000011X", "别人").await;
    assert_eq!(status, 200);
    assert!(out.contains("<strong>未找到</strong>") && !out.contains("海陵区市场监督管理局"), "{out}");
    let (status, out) = post("", "某公司").await;
    assert_eq!(status, 400);
    assert!(out.contains("证照编号"), "{out}");
    // Without the form's token: refused.
    let r = anon.post(app.url("/licenses/verify")).form(&[("number", "x"), ("holder", "y")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let (_, en) = get(&anon, &app, "/licenses/verify?lang=en").await;
    assert!(en.contains("Verify an electronic license"), "{en}");
}
