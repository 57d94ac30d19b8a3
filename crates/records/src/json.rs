//! The one JSON string quoter the webhook payloads (missed calls, account notices) use.

/// `s` as a JSON string literal: quotes, backslashes and control characters escaped.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n深圳"), "\"a\\\"b\\\\c\\u000a深圳\"");
    }
}
