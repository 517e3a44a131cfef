use super::*;

fn name(s: &str) -> FileName {
    FileName::parse(s).unwrap()
}

fn members(m: &[&str]) -> Vec<String> {
    m.iter().map(|s| s.to_string()).collect()
}

#[test]
fn names_are_one_plain_segment_with_an_allowed_extension() {
    assert_eq!(name(" 国土空间规划.pdf ").as_str(), "国土空间规划.pdf");
    assert_eq!(name("a.JPG").extension(), "jpg");
    for bad in ["", "../etc/passwd.pdf", "a\\b.pdf", "a\nb.pdf", ".pdf", "x\"y.pdf"] {
        assert_eq!(FileName::parse(bad).unwrap_err().code, "invalid_file_name", "{bad:?}");
    }
    for bad in ["page.html", "logo.svg", "setup.exe", "noext"] {
        assert_eq!(FileName::parse(bad).unwrap_err().code, "file_type_not_allowed", "{bad:?}");
    }
    assert!(FileName::parse(&"长".repeat(201)).is_err());
    assert_eq!(name("规划 2024.pdf").ascii_fallback(), "__ 2024.pdf");
}

#[test]
fn content_decides_the_kind_and_must_match_the_extension() {
    let ok = |n: &str, head: &[u8], m: Option<&[String]>| classify(&name(n), sniff(head), m);
    assert_eq!(ok("a.pdf", b"%PDF-1.7\n", None).unwrap(), FileKind::Pdf);
    assert_eq!(ok("a.png", b"\x89PNG\r\n\x1a\nxxxx", None).unwrap(), FileKind::Png);
    assert_eq!(ok("a.jpeg", b"\xff\xd8\xff\xe0", None).unwrap(), FileKind::Jpeg);
    assert_eq!(ok("a.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", None).unwrap(), FileKind::Xls);
    assert_eq!(ok("a.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", None).unwrap(), FileKind::Doc);
    assert_eq!(ok("a.csv", "姓名,年龄\n张三,3\n".as_bytes(), None).unwrap(), FileKind::Csv);
    assert_eq!(ok("a.geojson", b" {\"type\":\"FeatureCollection\"}", None).unwrap(), FileKind::GeoJson);
    assert_eq!(ok("a.json", b"[1,2]", None).unwrap(), FileKind::Json);
    let docx = members(&["[Content_Types].xml", "word/document.xml"]);
    assert_eq!(ok("a.docx", b"PK\x03\x04", Some(&docx)).unwrap(), FileKind::Docx);
    let xlsx = members(&["[Content_Types].xml", "xl/workbook.xml"]);
    assert_eq!(ok("a.xlsx", b"PK\x03\x04", Some(&xlsx)).unwrap(), FileKind::Xlsx);
    let shp = members(&["q/zones.shp", "q/zones.SHX", "q/zones.dbf", "q/zones.prj"]);
    assert_eq!(ok("a.zip", b"PK\x03\x04", Some(&shp)).unwrap(), FileKind::Shapefile);
    assert_eq!(ok("a.zip", b"PK\x03\x04", Some(&members(&["a.txt"]))).unwrap(), FileKind::Zip);

    // A PDF named .xlsx, a DOCX named .zip, a CSV named .pdf: refused with the reason.
    assert_eq!(ok("a.xlsx", b"%PDF-1.4", None).unwrap_err().code, "file_type_mismatch");
    assert_eq!(ok("a.zip", b"PK\x03\x04", Some(&docx)).unwrap_err().code, "file_type_mismatch");
    assert_eq!(ok("a.pdf", b"a,b\n1,2\n", None).unwrap_err().code, "file_type_mismatch");
    // Executables and markup whatever the name.
    assert_eq!(ok("a.pdf", b"MZ\x90\x00", None).unwrap_err().code, "executable_refused");
    assert_eq!(ok("a.csv", b"\x7fELF\x02", None).unwrap_err().code, "executable_refused");
    assert_eq!(ok("a.csv", b"#!/bin/sh\nrm -rf /", None).unwrap_err().code, "executable_refused");
    assert_eq!(ok("a.csv", b"  <svg onload=alert(1)>", None).unwrap_err().code, "file_type_not_allowed");
    assert_eq!(ok("a.json", b"\x00\x01\x02", None).unwrap_err().code, "file_type_not_allowed");
    assert_eq!(ok("a.csv", b"", None).unwrap_err().code, "empty_file");
    let exe = members(&["readme.txt", "bin/Setup.EXE"]);
    assert_eq!(ok("a.zip", b"PK\x03\x04", Some(&exe)).unwrap_err().code, "executable_refused");
    let no_dbf = members(&["zones.shp", "zones.shx"]);
    let e = ok("a.zip", b"PK\x03\x04", Some(&no_dbf)).unwrap_err();
    assert_eq!(e.code, "shapefile_incomplete");
    assert!(e.message.contains("zones.dbf"));
}

#[test]
fn served_types_never_execute() {
    for k in FileKind::ALL {
        let t = k.media_type();
        assert!(!t.contains("html") && !t.contains("svg") && !t.contains("javascript"), "{t}");
        assert_eq!(FileKind::parse(k.code()), Some(k));
    }
}
