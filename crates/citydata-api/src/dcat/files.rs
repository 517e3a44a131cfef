//! A resource's published files as DCAT distributions (issue #24): the files an anonymous
//! caller may download (the gate decides, as for the REST list), newest version of each name.

use super::{Graph, Links, dcat, dct};
use crate::{ApiError, AppState};
use citydata_core::files::FileView;
use citydata_domain::files::FileKind;
use citydata_domain::resource::Resource;
use oxrdf::vocab::xsd;
use serde_json::{Value, json};

/// The newest version of each file the public may download.
pub(super) async fn public_files(state: &AppState, r: &Resource) -> Result<Vec<FileView>, ApiError> {
    Ok(state.core.visible_files(None, r).await?.into_iter().filter(|f| f.latest).collect())
}

fn iri(l: &Links, r: &Resource, f: &FileView) -> String {
    format!("{}/distribution/file-{}", l.dataset(r), f.id)
}

/// The EU file-type code of a kind.
fn file_type(f: &FileView) -> String {
    FileKind::parse(&f.kind).map(|k| k.label().to_uppercase()).unwrap_or_else(|| "BIN".into())
}

pub(super) fn files_ttl(g: &mut Graph, l: &Links, r: &Resource, files: &[FileView]) {
    let ds = l.dataset(r);
    for f in files {
        let d = iri(l, r, f);
        g.iri(&ds, &dcat("distribution"), &d);
        g.a(&d, &dcat("Distribution"));
        g.zh(&d, &dct("title"), &f.name);
        if let Some(desc) = &f.description {
            g.zh(&d, &dct("description"), desc);
        }
        g.iri(&d, &dcat("accessURL"), &l.landing(r));
        g.iri(&d, &dcat("downloadURL"), &format!("{}{}", l.base, f.download_url));
        g.iri(&d, &dct("format"), &format!("{}{}", super::FILE_TYPE, file_type(f)));
        g.iri(&d, &dcat("mediaType"), &format!("https://www.iana.org/assignments/media-types/{}", f.media_type));
        g.typed(&d, &dcat("byteSize"), &f.size.to_string(), xsd::NON_NEGATIVE_INTEGER);
    }
}

pub(super) fn files_jsonld(l: &Links, r: &Resource, files: &[FileView], nodes: &mut Vec<Value>) {
    for f in files {
        let d = iri(l, r, f);
        if let Some(Value::Array(list)) = nodes.first_mut().and_then(|n| n.get_mut("dcat:distribution")) {
            list.push(json!({"@id": d}));
        }
        nodes.push(json!({
            "@id": d,
            "@type": "dcat:Distribution",
            "dct:title": {"@value": f.name, "@language": "zh"},
            "dct:description": f.description.as_ref().map(|t| json!({"@value": t, "@language": "zh"})),
            "dcat:accessURL": {"@id": l.landing(r)},
            "dcat:downloadURL": {"@id": format!("{}{}", l.base, f.download_url)},
            "dct:format": {"@id": format!("{}{}", super::FILE_TYPE, file_type(f))},
            "dcat:mediaType": {"@id": format!("https://www.iana.org/assignments/media-types/{}", f.media_type)},
            "dcat:byteSize": {"@value": f.size.to_string(), "@type": "xsd:nonNegativeInteger"},
        }));
    }
}
