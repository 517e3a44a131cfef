//! Bytes to UTF-8 text: gzip detection, and the encodings Chinese government files come in —
//! UTF-8, UTF-8 with BOM, GB18030/GBK — detected or given.
//!
//! Detection streams: the reader starts as UTF-8; if the first invalid UTF-8 sequence comes
//! before any valid multi-byte character (so everything so far was ASCII, identical in both
//! encodings), it switches to GB18030 from there on. Otherwise the invalid sequence is an error
//! naming its line.

use crate::error::{LakeError, Result};
use encoding_rs::{CoderResult, Decoder, GB18030};
use std::io::{BufRead, Read};

/// The text encoding of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 (with or without BOM) or GB18030, detected.
    Auto,
    Utf8,
    /// GB18030, which includes GBK and GB2312.
    Gb18030,
}

impl Encoding {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "" | "auto" => Ok(Self::Auto),
            "utf8" | "utf8bom" => Ok(Self::Utf8),
            "gb18030" | "gbk" | "gb2312" | "cp936" => Ok(Self::Gb18030),
            other => Err(LakeError::input(
                "invalid_encoding",
                format!(
                    "不支持的编码 \"{other}\"，可用 auto、utf-8、gb18030（含 GBK）/ unsupported encoding \"{other}\": use auto, utf-8 or gb18030"
                ),
            )),
        }
    }
}

/// An IO error while reading an upload, as the caller's problem.
pub fn input_io_error(e: std::io::Error) -> LakeError {
    if let Some(m) = crate::limits::bomb_message(&e) {
        return crate::limits::bomb_error(m);
    }
    match e.kind() {
        std::io::ErrorKind::FileTooLarge => LakeError::input("too_large", e.to_string()),
        std::io::ErrorKind::InvalidData => LakeError::input("bad_encoding", e.to_string()),
        _ => LakeError::input(
            "unreadable",
            format!("无法读取文件（可能被截断或损坏）/ cannot read the file (truncated or damaged?): {e}"),
        ),
    }
}

/// Wrap `inner` so that gzip input is decompressed (detected by its magic bytes), within the
/// default [`DecompressLimits`](crate::limits::DecompressLimits) (the caller may have applied
/// tighter or looser configured ones already: see [`crate::limits::gunzip_limited`]).
pub fn maybe_gunzip<R: Read + Send + 'static>(inner: R) -> Result<Box<dyn BufRead + Send>> {
    crate::limits::gunzip_limited(inner, crate::limits::DecompressLimits::default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// UTF-8 so far; may still switch to GB18030 while everything seen is ASCII.
    Sniffing,
    Utf8,
    Gb18030,
}

/// A `Read` that yields UTF-8 whatever the input encoding.
pub struct Utf8Reader<R: BufRead> {
    inner: R,
    mode: Mode,
    decoder: Option<Decoder>,
    /// Decoded bytes not yet handed out.
    out: Vec<u8>,
    out_pos: usize,
    /// Bytes of an incomplete UTF-8 sequence at the end of the last chunk.
    carry: Vec<u8>,
    lines: u64,
    bom_checked: bool,
    eof: bool,
    /// Set when the claimed UTF-8 turned out to be another encoding.
    pub error: Option<String>,
    /// UTF-8 is handed on unchecked once it is known to be UTF-8 (declared, or detected),
    /// because the caller validates every record itself ([`Self::checked_downstream`]).
    downstream: bool,
}

impl<R: BufRead> Utf8Reader<R> {
    pub fn new(inner: R, encoding: Encoding) -> Self {
        let mode = match encoding {
            Encoding::Auto => Mode::Sniffing,
            Encoding::Utf8 => Mode::Utf8,
            Encoding::Gb18030 => Mode::Gb18030,
        };
        let decoder = (mode == Mode::Gb18030).then(|| GB18030.new_decoder_without_bom_handling());
        Self {
            inner,
            mode,
            decoder,
            out: Vec::new(),
            out_pos: 0,
            carry: Vec::new(),
            lines: 1,
            bom_checked: false,
            eof: false,
            error: None,
            downstream: false,
        }
    }

    /// For a caller that validates the UTF-8 of everything it reads (the CSV reader checks
    /// each record and names its line): text known to be UTF-8 is passed through without a
    /// second check here. Detection still reads each chunk until the text shows its encoding.
    pub fn checked_downstream(mut self) -> Self {
        self.downstream = true;
        self
    }

    /// Which encoding was used (after detection).
    pub fn detected(&self) -> &'static str {
        match self.mode {
            Mode::Gb18030 => "gb18030",
            _ => "utf-8",
        }
    }

    fn refill(&mut self) -> std::io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        let mut data = std::mem::take(&mut self.carry);
        let chunk = self.inner.fill_buf()?;
        let n = chunk.len();
        data.extend_from_slice(chunk);
        self.inner.consume(n);
        if n == 0 {
            self.eof = true;
        }
        if !self.bom_checked && (data.len() >= 3 || self.eof) {
            self.bom_checked = true;
            if data.starts_with(b"\xEF\xBB\xBF") {
                data.drain(..3);
                if self.mode == Mode::Sniffing {
                    self.mode = Mode::Utf8;
                }
            }
        } else if !self.bom_checked {
            self.carry = data;
            return Ok(());
        }
        match self.mode {
            Mode::Gb18030 => self.decode_gb(&data, 0),
            Mode::Utf8 if self.downstream => {
                // Handed on as it is; a chunk may end inside a character, which the caller
                // joins with the next chunk's bytes.
                self.hand_out(data);
                Ok(())
            }
            Mode::Utf8 | Mode::Sniffing => {
                // An invalid sequence (not merely one cut at the chunk's end).
                let (valid_up_to, invalid) = match std::str::from_utf8(&data) {
                    Ok(_) => (data.len(), false),
                    Err(e) => (e.valid_up_to(), e.error_len().is_some() || self.eof),
                };
                if self.mode == Mode::Sniffing && invalid {
                    // Not UTF-8. What was passed on while sniffing was ASCII (the same in
                    // GB18030), so this whole chunk — also a valid-looking start, since GBK
                    // byte pairs often happen to be valid UTF-8 — is GB18030.
                    self.mode = Mode::Gb18030;
                    self.decoder = Some(GB18030.new_decoder_without_bom_handling());
                    return self.decode_gb(&data, 0);
                }
                let (good, rest) = data.split_at(valid_up_to);
                if self.mode == Mode::Sniffing && !good.is_ascii() {
                    self.mode = Mode::Utf8;
                }
                self.lines += good.iter().filter(|b| **b == b'\n').count() as u64;
                if rest.is_empty() {
                    // The usual case: the whole chunk is handed out as it is.
                    self.hand_out(data);
                    return Ok(());
                }
                self.out.extend_from_slice(good);
                let incomplete = std::str::from_utf8(rest).err().is_some_and(|e| e.error_len().is_none());
                if incomplete && !self.eof {
                    self.carry = rest.to_vec();
                    return Ok(());
                }
                if self.mode == Mode::Sniffing {
                    self.mode = Mode::Gb18030;
                    self.decoder = Some(GB18030.new_decoder_without_bom_handling());
                    let rest = rest.to_vec();
                    return self.decode_gb(&rest, 0);
                }
                let msg = format!(
                    "第 {} 行不是有效的 UTF-8 文本；如果文件是 GBK/GB18030 编码，请指定 encoding=gb18030 / line {}: invalid UTF-8; if the file is GBK/GB18030 encoded, pass encoding=gb18030",
                    self.lines, self.lines
                );
                self.error = Some(msg.clone());
                Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg))
            }
        }
    }

    /// Hands `data` out as the next chunk without copying it; the buffer handed out before
    /// takes the next chunk (an empty carry).
    fn hand_out(&mut self, data: Vec<u8>) {
        let mut old = std::mem::replace(&mut self.out, data);
        old.clear();
        self.carry = old;
    }

    fn decode_gb(&mut self, data: &[u8], _from: usize) -> std::io::Result<()> {
        let decoder = self.decoder.get_or_insert_with(|| GB18030.new_decoder_without_bom_handling());
        let mut buf = String::with_capacity(data.len() * 3 / 2 + 16);
        let needed = decoder.max_utf8_buffer_length(data.len()).unwrap_or(data.len() * 3 + 16);
        buf.reserve(needed);
        let (result, _read, had_errors) = decoder.decode_to_string(data, &mut buf, self.eof);
        debug_assert!(matches!(result, CoderResult::InputEmpty));
        if had_errors {
            let line = self.lines + buf.bytes().take_while(|b| *b != 0).filter(|b| *b == b'\n').count() as u64;
            let msg = format!(
                "第 {line} 行不是有效的 GB18030 文本：编码与声明不符 / line {line}: not valid GB18030 text; the encoding does not match"
            );
            self.error = Some(msg.clone());
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, msg));
        }
        self.lines += buf.bytes().filter(|b| *b == b'\n').count() as u64;
        self.out.extend_from_slice(buf.as_bytes());
        Ok(())
    }
}

impl<R: BufRead> Read for Utf8Reader<R> {
    fn read(&mut self, dst: &mut [u8]) -> std::io::Result<usize> {
        while self.out_pos >= self.out.len() {
            if self.eof && self.carry.is_empty() {
                return Ok(0);
            }
            self.refill()?;
            if self.eof && self.out.is_empty() && self.carry.is_empty() {
                return Ok(0);
            }
        }
        let n = dst.len().min(self.out.len() - self.out_pos);
        dst[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: Vec<u8>, enc: Encoding) -> std::io::Result<(String, &'static str)> {
        let mut r = Utf8Reader::new(std::io::BufReader::with_capacity(7, std::io::Cursor::new(bytes)), enc);
        let mut s = String::new();
        r.read_to_string(&mut s)?;
        Ok((s, r.detected()))
    }

    #[test]
    fn detects_each_encoding() {
        let text = "姓名,身份证号\n张三,11010519491231002X\n".repeat(50);
        let (gb, _, _) = GB18030.encode(&text);
        assert_eq!(read_all(text.clone().into_bytes(), Encoding::Auto).unwrap(), (text.clone(), "utf-8"));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(read_all(bom, Encoding::Auto).unwrap().0, text);
        assert_eq!(read_all(gb.to_vec(), Encoding::Auto).unwrap(), (text.clone(), "gb18030"));
        assert_eq!(read_all(gb.to_vec(), Encoding::Gb18030).unwrap().0, text);
        // ASCII first, Chinese later: the switch happens mid-stream.
        let late = format!("{}\n{}", "a,b\n1,2\n".repeat(100), "张三,李四\n");
        let (gb, _, _) = GB18030.encode(&late);
        assert_eq!(read_all(gb.to_vec(), Encoding::Auto).unwrap().0, late);
    }

    #[test]
    fn gb18030_is_detected_when_its_first_bytes_happen_to_be_utf8() {
        // "碳" in GB18030 is 0xCC 0xBC: a valid two-byte UTF-8 sequence ("̼").
        let text = "碳排放,更新时间\n碳,2024-01-01\n".repeat(3);
        let (gb, _, _) = GB18030.encode(&text);
        assert!(std::str::from_utf8(&gb[..2]).is_ok(), "the fixture starts with valid UTF-8");
        assert_eq!(read_all(gb.to_vec(), Encoding::Auto).unwrap(), (text.clone(), "gb18030"));
        // Only non-ASCII bytes, no newline.
        let (gb, _, _) = GB18030.encode("人口基础信息𠮷㐀");
        assert_eq!(read_all(gb.to_vec(), Encoding::Auto).unwrap(), ("人口基础信息𠮷㐀".to_string(), "gb18030"));
    }

    #[test]
    fn a_wrong_claim_names_the_line() {
        let text = "a,b\n1,2\n张三,李四\n";
        let (gb, _, _) = GB18030.encode(text);
        let e = read_all(gb.to_vec(), Encoding::Utf8).unwrap_err().to_string();
        assert!(e.contains("第 3 行") && e.contains("gb18030"), "{e}");
        // UTF-8 that breaks after valid Chinese is not re-guessed.
        let mut bytes = "张三\n李四\n".as_bytes().to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        assert!(read_all(bytes, Encoding::Auto).is_err());
    }

    /// Every chunk size cuts some character: the text comes out whole whichever buffer it
    /// passes through (a chunk handed out as it is, or its cut tail carried to the next).
    #[test]
    fn utf8_cut_at_every_chunk_size_comes_out_whole() {
        let text = "身份证号,地址𠮷\n11010519491231002X,泰州市海陵区ａ\n".repeat(20);
        for cap in 1..=17 {
            for enc in [Encoding::Utf8, Encoding::Auto] {
                let mut r =
                    Utf8Reader::new(std::io::BufReader::with_capacity(cap, std::io::Cursor::new(text.clone())), enc);
                let mut s = String::new();
                r.read_to_string(&mut s).unwrap();
                assert_eq!(s, text, "chunks of {cap}");
            }
        }
    }

    #[test]
    fn gzip_is_detected() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all("x,y\n1,2\n".as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let mut s = String::new();
        maybe_gunzip(std::io::Cursor::new(gz)).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "x,y\n1,2\n");
        let mut s = String::new();
        maybe_gunzip(std::io::Cursor::new(b"plain".to_vec())).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "plain");
    }
}
