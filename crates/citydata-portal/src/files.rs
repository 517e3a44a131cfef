//! 文件分发 pages: the dataset page's files section (links only: a PDF or an image opens in
//! the browser's own viewer, everything else downloads; the download route serves them with
//! `Content-Security-Policy: sandbox`, so nothing runs) and the console's file form for the
//! provider's stewards (multipart, CSRF checked before the file is read).

use crate::ctx::Ctx;
use crate::render::Portal;
use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use citydata_api::AppState;
use citydata_core::CoreError;
use citydata_core::files::{FileUploadInput, FileView};
use citydata_domain::files::{ALLOWED_EXTENSIONS, FileKind};
use citydata_domain::resource::Resource;
use serde_json::{Value, json};
use std::sync::Arc;

type P = Extension<Arc<Portal>>;

/// A size for people: 1.2 MB, 830 KB, 95 B.
pub(crate) fn size_text(n: i64) -> String {
    let n = n.max(0) as f64;
    if n >= 1_048_576.0 {
        format!("{:.1} MB", n / 1_048_576.0)
    } else if n >= 1024.0 {
        format!("{:.0} KB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn view(f: &FileView) -> Value {
    let inline = FileKind::parse(&f.kind).is_some_and(FileKind::inline);
    json!({"id": f.id, "name": f.name, "version": f.version, "latest": f.latest, "format": f.format,
        "size": size_text(f.size), "description": f.description, "deidentified": f.deidentified,
        "created_at": f.created_at, "download_url": f.download_url, "inline": inline})
}

/// The files the caller may download, newest version of each name, for the dataset page.
pub(crate) async fn dataset_files(state: &AppState, ctx: &Ctx, r: &Resource) -> Vec<Value> {
    match state.core.visible_files(ctx.principal.as_ref(), r).await {
        Ok(files) => files.iter().filter(|f| f.latest).map(view).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "listing a dataset's files failed");
            vec![]
        }
    }
}

fn page(r: &Resource, files: &[FileView]) -> Value {
    json!({"r": {"slug": r.content.slug.as_str(), "name": r.content.name},
        "files": files.iter().map(view).collect::<Vec<_>>(), "allowed": ALLOWED_EXTENSIONS})
}

/// `/console/resources/{slug}/files`: every version of every file and the upload form.
pub async fn files_page(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
) -> Response {
    let r = match crate::console::editable(&state, &ctx, &portal, &slug).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some(p) = ctx.principal.as_ref() else { return ctx.core_error(&portal, CoreError::unauthenticated()) };
    match state.core.manage_files(p, &slug).await {
        Ok(files) => ctx.render(&portal, "console/files.html", page(&r, &files)),
        Err(e) => ctx.core_error(&portal, e),
    }
}

/// The form's post: the file and its fields, CSRF checked first.
pub async fn upload(
    State(state): State<AppState>,
    Extension(portal): P,
    Path(slug): Path<String>,
    ctx: Ctx,
    request: Request,
) -> Response {
    let p = match ctx.require_login() {
        Ok(p) => p.clone(),
        Err(r) => return r,
    };
    let up = match citydata_api::v1::data::multipart_upload(request).await {
        Ok(u) => u,
        Err(e) => return ctx.error_page(&portal, e.status, &e.message),
    };
    let field = |k: &str| up.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    if let Err(r) = ctx.check_csrf(&field("csrf").unwrap_or_default()) {
        return r;
    }
    let r = match crate::console::editable(&state, &ctx, &portal, &slug).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let input = FileUploadInput {
        name: field("name").or(up.file_name.clone()).unwrap_or_default(),
        description: field("description"),
        deidentified: field("deidentified").is_some(),
    };
    let outcome = state.core.upload_file(&ctx.meta, &p, &slug, input, up.file).await;
    let files = state.core.manage_files(&p, &slug).await.unwrap_or_default();
    let mut data = page(&r, &files);
    match outcome {
        Ok(f) => {
            data["stored"] = view(&f);
            ctx.render(&portal, "console/files.html", data)
        }
        Err(e @ (CoreError::Input { .. } | CoreError::Validation(_) | CoreError::TooLarge(_))) => {
            let api = citydata_api::ApiError::from(e);
            data["error"] = json!(crate::present::one_language(&api.message, ctx.lang));
            data["details"] = api.details;
            ctx.render_status(&portal, api.status, "console/files.html", data)
        }
        Err(e) => ctx.core_error(&portal, e),
    }
}
