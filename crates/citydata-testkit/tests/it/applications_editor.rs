//! The console's applications editor (issue #17): a steward registers an application in a form
//! and edits it; a form filled from an older state is refused with 409; a resource the
//! department may not read comes back with the reason; another department's steward gets 403
//! on the edit form and the save; zh and en, no raw codes.

use crate::plain::raw_codes;
use crate::support::{csrf_of, get, login_form};
use citydata_testkit::{DEMO_PASSWORD, spawn_app};
use serde_json::Value;

fn hidden(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let at = html.find(&key).unwrap_or_else(|| panic!("no {name} in {html}")) + key.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn a_steward_registers_and_edits_an_application_and_others_cannot() {
    let app = spawn_app().await;
    let scj = login_form(&app, "scjgj-steward", DEMO_PASSWORD).await;
    let (status, list) = get(&scj, &app, "/console/applications").await;
    assert_eq!(status, 200, "{list}");
    assert!(list.contains("本部门尚未登记应用"), "{list}");
    let (status, form) = get(&scj, &app, "/console/applications/new").await;
    assert_eq!(status, 200);
    assert!(raw_codes(&form).is_empty(), "{:?}", raw_codes(&form));
    let post = |path: &str, fields: Vec<(&'static str, String)>| {
        let c = scj.clone();
        let url = app.url(path);
        async move {
            let r = c.post(url).form(&fields).send().await.unwrap();
            (r.status().as_u16(), r.url().path().to_string(), r.text().await.unwrap().replace("&#x2f;", "/"))
        }
    };
    // A resource 市场监管局 may not read (不予共享 居民身份证电子证照): refused, the form kept.
    let fields = |csrf: String, name: &str, resources: &str, revision: &str| {
        vec![
            ("csrf", csrf),
            ("name", name.to_string()),
            ("scenario", "企业开办一网通办".to_string()),
            ("url", "https://example.gov.cn/kb".to_string()),
            ("status", "building".to_string()),
            ("resources", resources.to_string()),
            ("revision", revision.to_string()),
        ]
    };
    let (status, _, out) =
        post("/console/applications/new", fields(csrf_of(&form), "企业开办", "105/000001\n105/000002", "")).await;
    assert_eq!(status, 400, "{out}");
    assert!(out.contains("105/000002") && out.contains("value=\"企业开办\""), "{out}");
    // Registered.
    let (status, path, out) =
        post("/console/applications/new", fields(csrf_of(&form), "企业开办", "105/000001", "")).await;
    assert_eq!((status, path.as_str()), (200, "/console/applications"), "{out}");
    assert!(out.contains("企业开办") && out.contains("营业执照电子证照") && out.contains("建设中"), "{out}");
    assert!(raw_codes(&out).is_empty(), "{:?}", raw_codes(&out));
    let api = app.login("scjgj-steward").await;
    let apps: Value = api.get(app.url("/api/v1/applications")).send().await.unwrap().json().await.unwrap();
    let id =
        apps.as_array().unwrap().iter().find(|a| a["name"] == "企业开办").unwrap()["id"].as_str().unwrap().to_string();
    let edit = format!("/console/applications/{id}/edit");
    assert!(out.contains(&edit), "an edit link: {out}");
    // Edited: renamed and in use.
    let (status, page) = get(&scj, &app, &edit).await;
    assert_eq!(status, 200);
    assert!(page.contains("105/000001") && page.contains("value=\"企业开办\""), "{page}");
    let revision = hidden(&page, "revision");
    let mut f = fields(csrf_of(&page), "企业开办一件事", "105/000001", &revision);
    f[4].1 = "active".into();
    let (status, path, out) = post(&edit, f.clone()).await;
    assert_eq!((status, path.as_str()), (200, "/console/applications"), "{out}");
    assert!(out.contains("企业开办一件事") && out.contains("运行中"), "{out}");
    // The same old form again: 409, nothing changed.
    let mut stale = f.clone();
    stale[1].1 = "又一个名字".into();
    let (status, _, _) = post(&edit, stale).await;
    assert_eq!(status, 409);
    let apps: Value = api.get(app.url("/api/v1/applications")).send().await.unwrap().json().await.unwrap();
    let a = apps.as_array().unwrap().iter().find(|a| a["id"] == id.as_str()).unwrap();
    assert_eq!((a["name"].as_str(), a["status"].as_str()), (Some("企业开办一件事"), Some("active")), "{a}");
    // English.
    let (_, en) = get(&scj, &app, "/console/applications?lang=en").await;
    assert!(en.contains("Applications") && en.contains("in use"), "{en}");
    // Another department's steward: no edit form, no save, no edit link.
    let gaj = login_form(&app, "gaj-steward", DEMO_PASSWORD).await;
    let (status, _) = get(&gaj, &app, &edit).await;
    assert_eq!(status, 403);
    let (_, own) = get(&gaj, &app, "/console/applications").await;
    assert!(!own.contains(&edit), "{own}");
    let mut theirs = f.clone();
    theirs[0].1 = csrf_of(&own);
    theirs[6].1 = revision.clone();
    let r = gaj.post(app.url(&edit)).form(&theirs).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Without the form's token: refused.
    let mut no_token = f.clone();
    no_token.remove(0);
    let r = scj.post(app.url(&edit)).form(&no_token).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Audited.
    let entries = crate::support::audit_entries(&app, "application.update").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
}
