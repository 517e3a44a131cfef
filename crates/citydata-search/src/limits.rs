//! Bounds on search text, checked before tantivy's query parser sees it: the parser recurses on
//! nesting (parentheses, brackets, braces) and a few hundred levels overflow the stack of the
//! thread running it, which aborts the whole server.

use citydata_domain::FieldError;

/// Longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Deepest nesting of `(`, `[` and `{` in search text.
pub const MAX_QUERY_DEPTH: usize = 8;

/// Refuse `text` (the value of parameter `field`) when it nests too deep (`query_too_deep`,
/// naming the position) or is too long (`query_too_long`).
pub fn check_query(field: &str, text: &str) -> Result<(), FieldError> {
    let mut depth = 0usize;
    for (i, c) in text.chars().enumerate() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_QUERY_DEPTH {
                    return Err(FieldError::new(
                        field,
                        "query_too_deep",
                        format!(
                            "搜索词第 {} 个字符处括号嵌套超过 {MAX_QUERY_DEPTH} 层 / the search text nests brackets deeper than {MAX_QUERY_DEPTH} levels at character {}",
                            i + 1,
                            i + 1
                        ),
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let n = text.chars().count();
    if n > MAX_QUERY_CHARS {
        return Err(FieldError::new(
            field,
            "query_too_long",
            format!(
                "搜索词过长（{n} 个字符，上限 {MAX_QUERY_CHARS}）/ the search text is too long ({n} characters, at most {MAX_QUERY_CHARS})"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_deep_text_is_refused() {
        assert!(check_query("q", "人口 AND (法人 OR 企业)").is_ok());
        let deep = format!("{}人口{}", "(".repeat(800), ")".repeat(800));
        let e = check_query("q", &deep).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("q", "query_too_deep"));
        assert!(e.message.contains("第 9 个字符"), "{}", e.message);
        assert_eq!(check_query("fq", &"a".repeat(1001)).unwrap_err().code, "query_too_long");
    }
}
