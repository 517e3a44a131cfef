//! A dataset's published files as CKAN resources (issue #24): the newest version of each file
//! the caller may download (the gate decides), after the export downloads. Their ids are
//! `<dataset id>.<file id>`, so `resource_show` finds them like the exports.

use super::packages::fmt_time;
use super::*;
use citydata_core::files::FileView;

/// `files` (newest versions) as CKAN resources, numbered from `start`.
pub(super) fn file_resources(r: &Resource, files: &[FileView], base: &str, start: usize) -> Vec<Value> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            json!({
                "id": format!("{}.{}", r.id, f.id),
                "package_id": r.id,
                "name": f.name,
                "description": f.description.clone().unwrap_or_default(),
                "format": f.format,
                "mimetype": f.media_type,
                "size": f.size,
                "hash": format!("sha256:{}", f.sha256),
                "url": format!("{base}{}", f.download_url),
                "url_type": null,
                "state": "active",
                "position": start + i,
                "created": fmt_time(f.created_at),
                "last_modified": fmt_time(f.created_at),
                "datastore_active": false,
                "resource_type": "file",
                "version": f.version,
            })
        })
        .collect()
}

/// The newest version of each file `p` may download.
pub(super) async fn latest_files(
    core: &citydata_core::Core,
    p: Option<&Principal>,
    r: &Resource,
) -> Result<Vec<FileView>, CkanError> {
    Ok(core.visible_files(p, r).await?.into_iter().filter(|f| f.latest).collect())
}

/// Add the files to a package built by `packages::package`.
pub(super) async fn add_files(
    core: &citydata_core::Core,
    p: Option<&Principal>,
    r: &Resource,
    base: &str,
    pkg: &mut Value,
) -> Result<(), CkanError> {
    let files = latest_files(core, p, r).await?;
    if let Some(Value::Array(list)) = pkg.get_mut("resources") {
        let start = list.len();
        list.extend(file_resources(r, &files, base, start));
        let n = list.len();
        pkg["num_resources"] = json!(n);
    }
    Ok(())
}
