//! 文件分发 (file distributions): the rules a file of a resource obeys, without IO.
//!
//! - [`FileName`] — the name a file is published under: one path segment, printable, at most
//!   200 characters, ending in an extension of the allow-list.
//! - [`sniff`] reads the first bytes (magic numbers) and [`classify`] decides the file's
//!   [`FileKind`] from them, the extension and (for ZIP archives) the member names: a PDF
//!   named `.xlsx`, an executable, HTML or SVG, or a Shapefile archive without its `.dbf` is
//!   refused with the reason. The served media type comes from the kind found in the content,
//!   never from the client, and is never one a browser would run (no HTML, no SVG).
//! - [`file_readable`] — who may download a file, given the gate's decision: the provider
//!   always; others only what the gate allows whole (no row filter), and a file of a resource
//!   with personal items only when the provider marked it de-identified (a file cannot be
//!   masked).

use crate::error::FieldError;
use crate::policy::Allow;
use crate::resource::Resource;
use crate::vocab::Sensitivity;

/// Longest file name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// What a file is, as found in its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Pdf,
    /// Word 97–2003 or Excel 97–2003 (an OLE2 compound file; the extension tells which).
    Doc,
    Xls,
    Docx,
    Xlsx,
    Zip,
    /// A ZIP archive holding a Shapefile (`.shp` with its `.shx` and `.dbf`).
    Shapefile,
    Png,
    Jpeg,
    GeoJson,
    Json,
    Csv,
}

impl FileKind {
    pub const ALL: [FileKind; 12] = [
        Self::Pdf,
        Self::Doc,
        Self::Xls,
        Self::Docx,
        Self::Xlsx,
        Self::Zip,
        Self::Shapefile,
        Self::Png,
        Self::Jpeg,
        Self::GeoJson,
        Self::Json,
        Self::Csv,
    ];

    /// Stable code, stored and shown in the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Doc => "doc",
            Self::Xls => "xls",
            Self::Docx => "docx",
            Self::Xlsx => "xlsx",
            Self::Zip => "zip",
            Self::Shapefile => "shapefile",
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::GeoJson => "geojson",
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The format's name for people (CKAN's `format`, the portal's labels).
    pub fn label(self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Doc => "DOC",
            Self::Xls => "XLS",
            Self::Docx => "DOCX",
            Self::Xlsx => "XLSX",
            Self::Zip => "ZIP",
            Self::Shapefile => "SHP",
            Self::Png => "PNG",
            Self::Jpeg => "JPEG",
            Self::GeoJson => "GeoJSON",
            Self::Json => "JSON",
            Self::Csv => "CSV",
        }
    }

    /// The media type the file is served with: from the content, never a type a browser
    /// would execute (`text/html`, `image/svg+xml`, scripts).
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Doc => "application/msword",
            Self::Xls => "application/vnd.ms-excel",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Zip | Self::Shapefile => "application/zip",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::GeoJson => "application/geo+json",
            Self::Json => "application/json",
            Self::Csv => "text/csv",
        }
    }

    /// Opened by the browser's own viewer (PDF, images) rather than saved.
    pub fn inline(self) -> bool {
        matches!(self, Self::Pdf | Self::Png | Self::Jpeg)
    }

    /// The kinds a file name's extension may hold.
    pub fn for_extension(ext: &str) -> &'static [FileKind] {
        match ext {
            "pdf" => &[Self::Pdf],
            "doc" => &[Self::Doc],
            "xls" => &[Self::Xls],
            "docx" => &[Self::Docx],
            "xlsx" => &[Self::Xlsx],
            "zip" => &[Self::Zip, Self::Shapefile],
            "png" => &[Self::Png],
            "jpg" | "jpeg" => &[Self::Jpeg],
            "geojson" => &[Self::GeoJson],
            "json" => &[Self::Json, Self::GeoJson],
            "csv" => &[Self::Csv],
            _ => &[],
        }
    }
}

/// The extensions of the allow-list, for messages and forms.
pub const ALLOWED_EXTENSIONS: &str = "pdf, doc, docx, xls, xlsx, zip, png, jpg, jpeg, geojson, json, csv";

/// A published file's name (one path segment with an allowed extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        let bad = |m: &str| FieldError::new("name", "invalid_file_name", m.to_string());
        if name.is_empty() {
            return Err(bad("文件名不能为空 / the file name is required"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(bad("文件名不能超过 200 个字符 / the file name is longer than 200 characters"));
        }
        if name.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | '"' | '<' | '>' | '*' | '?' | '|' | ':'))
            || name.starts_with('.')
        {
            return Err(bad(
                "文件名不能含路径分隔符、控制字符或 \" < > * ? | : / the file name must be one plain name (no path, no control characters)",
            ));
        }
        let name = Self(name.to_string());
        if FileKind::for_extension(&name.extension()).is_empty() {
            return Err(FieldError::new(
                "name",
                "file_type_not_allowed",
                format!(
                    "不接受该类型的文件，允许的扩展名：{ALLOWED_EXTENSIONS} / this file type is not accepted; allowed: {ALLOWED_EXTENSIONS}"
                ),
            ));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-case extension (without the dot).
    pub fn extension(&self) -> String {
        self.0.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
    }

    /// An ASCII stand-in for old clients (`Content-Disposition`'s `filename=`): non-ASCII
    /// characters become `_`, the extension is kept.
    pub fn ascii_fallback(&self) -> String {
        self.0.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' }).collect()
    }
}

impl std::fmt::Display for FileName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Pdf,
    /// OLE2 compound file (DOC, XLS).
    Ole,
    Zip,
    Png,
    Jpeg,
    /// Text whose first character opens a JSON value.
    JsonText,
    /// Other plain text (CSV and the like).
    Text,
    /// Markup (HTML, SVG, XML): a browser could run its scripts.
    Markup,
    /// A program: `what` names the format.
    Executable(&'static str),
    Empty,
    Unknown,
}

/// The content's type from its first bytes (give at least the first 4 KiB when there are).
pub fn sniff(head: &[u8]) -> Sniffed {
    const EXECUTABLES: [(&[u8], &str); 7] = [
        (b"MZ", "Windows PE"),
        (b"\x7fELF", "ELF"),
        (b"\xfe\xed\xfa\xce", "Mach-O"),
        (b"\xfe\xed\xfa\xcf", "Mach-O"),
        (b"\xcf\xfa\xed\xfe", "Mach-O"),
        (b"\xca\xfe\xba\xbe", "Mach-O/Java class"),
        (b"#!", "script"),
    ];
    if head.is_empty() {
        return Sniffed::Empty;
    }
    for (magic, what) in EXECUTABLES {
        if head.starts_with(magic) {
            return Sniffed::Executable(what);
        }
    }
    if head.starts_with(b"%PDF-") {
        return Sniffed::Pdf;
    }
    if head.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        return Sniffed::Ole;
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Sniffed::Zip;
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Sniffed::Png;
    }
    if head.starts_with(b"\xff\xd8\xff") {
        return Sniffed::Jpeg;
    }
    // Text: no NUL and no control characters but tab, line breaks and form feed.
    if head.iter().any(|&b| b == 0 || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))) {
        return Sniffed::Unknown;
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Sniffed::Markup,
        Some(b'{') | Some(b'[') => Sniffed::JsonText,
        _ => Sniffed::Text,
    }
}

/// Member names that make an archive refused: programs and scripts.
fn executable_member(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".exe", ".dll", ".bat", ".cmd", ".com", ".scr", ".msi", ".ps1", ".vbs", ".js", ".jar", ".sh", ".apk", ".lnk"]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// A ZIP's kind from its member names: OOXML (`[Content_Types].xml` with `word/` or `xl/`),
/// a Shapefile (every `.shp` with its `.shx` and `.dbf`), else a plain archive.
fn zip_kind(members: &[String]) -> Result<FileKind, FieldError> {
    if let Some(m) = members.iter().find(|m| executable_member(m)) {
        return Err(FieldError::new(
            "file",
            "executable_refused",
            format!("压缩包中含可执行文件或脚本“{m}”，不予接受 / the archive contains a program or script: {m}"),
        ));
    }
    let has = |p: &str| members.iter().any(|m| m.starts_with(p));
    if members.iter().any(|m| m == "[Content_Types].xml") {
        if has("word/") {
            return Ok(FileKind::Docx);
        }
        if has("xl/") {
            return Ok(FileKind::Xlsx);
        }
    }
    let lower: Vec<String> = members.iter().map(|m| m.to_ascii_lowercase()).collect();
    let shps: Vec<&str> = lower.iter().filter_map(|m| m.strip_suffix(".shp")).collect();
    if shps.is_empty() {
        return Ok(FileKind::Zip);
    }
    for stem in shps {
        for part in ["shx", "dbf"] {
            if !lower.iter().any(|m| m == &format!("{stem}.{part}")) {
                return Err(FieldError::new(
                    "file",
                    "shapefile_incomplete",
                    format!("Shapefile 压缩包缺少 {stem}.{part} / the Shapefile archive lacks {stem}.{part}"),
                ));
            }
        }
    }
    Ok(FileKind::Shapefile)
}

/// The file's kind from what its content says (`sniffed`, and for ZIPs `zip_members`),
/// checked against its name's extension. Refusals name the reason: `executable_refused`,
/// `file_type_not_allowed`, `file_type_mismatch`, `empty_file`, `shapefile_incomplete`.
pub fn classify(name: &FileName, sniffed: Sniffed, zip_members: Option<&[String]>) -> Result<FileKind, FieldError> {
    let ext = name.extension();
    let found = match sniffed {
        Sniffed::Executable(what) => {
            return Err(FieldError::new(
                "file",
                "executable_refused",
                format!("可执行文件（{what}）不予接受 / executables are not accepted ({what})"),
            ));
        }
        Sniffed::Empty => return Err(FieldError::new("file", "empty_file", "文件为空 / the file is empty")),
        Sniffed::Markup | Sniffed::Unknown => {
            return Err(FieldError::new(
                "file",
                "file_type_not_allowed",
                format!(
                    "文件内容不是允许的类型（{ALLOWED_EXTENSIONS}），网页、SVG 和其他格式不予接受 / the content is not of an accepted type ({ALLOWED_EXTENSIONS}); HTML, SVG and other formats are refused"
                ),
            ));
        }
        Sniffed::Pdf => FileKind::Pdf,
        Sniffed::Ole => {
            if ext == "xls" {
                FileKind::Xls
            } else {
                FileKind::Doc
            }
        }
        Sniffed::Zip => zip_kind(zip_members.unwrap_or(&[]))?,
        Sniffed::Png => FileKind::Png,
        Sniffed::Jpeg => FileKind::Jpeg,
        Sniffed::JsonText => {
            if ext == "geojson" {
                FileKind::GeoJson
            } else {
                FileKind::Json
            }
        }
        Sniffed::Text => FileKind::Csv,
    };
    // A JSON file whose name says .json may hold GeoJSON; a .zip may hold a Shapefile.
    let allowed = FileKind::for_extension(&ext);
    if allowed.contains(&found) || (found == FileKind::Json && ext == "json") {
        Ok(found)
    } else {
        Err(FieldError::new(
            "file",
            "file_type_mismatch",
            format!(
                "文件内容（{}）与扩展名 .{ext} 不符 / the content ({}) does not match the extension .{ext}",
                found.label(),
                found.label()
            ),
        ))
    }
}

/// Whether the resource holds personal (or internal) items: its files may carry them.
pub fn has_personal_items(resource: &Resource) -> bool {
    resource.content.items.iter().any(|i| i.sensitivity != Sensitivity::None)
}

/// Whether a caller whom the gate allowed `allow` may download a file of `resource`. A file
/// cannot be masked or filtered: the provider reads every file; anyone else reads a file only
/// when the gate gives the resource without a row filter, and — when the resource has personal
/// items, or the gate removed or masked any item — only files the provider marked
/// de-identified.
pub fn file_readable(allow: &Allow, resource: &Resource, deidentified: bool) -> bool {
    if allow.provider {
        return true;
    }
    if allow.row_filter.is_some() {
        return false;
    }
    let whole = allow.masks.is_empty() && allow.fields.len() == resource.content.items.len();
    deidentified || (whole && !has_personal_items(resource))
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
