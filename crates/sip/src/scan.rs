//! Small lexical helpers shared by the header parsers (RFC 3261 §25.1).
//!
//! Header values are kept exactly as received, folding included, so every helper here
//! treats CR and LF as linear white space: after the message parser has accepted the
//! header section, a CRLF inside a value can only be a fold.

/// `token` characters: alphanumerics and `-.!%*_+`'~`.
#[inline]
pub fn is_token_char(b: u8) -> bool {
    TOKEN_CHARS[usize::from(b)]
}

/// Every header name and most parameter bytes go through [`is_token_char`], so it is a
/// table lookup rather than a chain of comparisons.
static TOKEN_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    table
};

pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

#[inline]
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub fn trim_lws(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

pub fn trim_lws_start(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '\r', '\n'])
}

/// Offset of the first `needle` outside quoted strings and angle brackets.
pub fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if in_angle {
            if b == b'>' {
                in_angle = false;
            }
        } else if b == needle {
            return Some(i);
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            in_angle = true;
        }
        i += 1;
    }
    None
}

/// Splits a list header value on commas outside quotes and angle brackets. Elements are
/// trimmed; empty elements are yielded as empty strings so validators can reject `a,,b`.
pub fn split_list(value: &str) -> ListIter<'_> {
    ListIter { rest: Some(value) }
}

pub struct ListIter<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match find_unquoted(rest, b',') {
            Some(at) => {
                self.rest = Some(&rest[at + 1..]);
                Some(trim_lws(&rest[..at]))
            }
            None => {
                self.rest = None;
                Some(trim_lws(rest))
            }
        }
    }
}

/// Length of the quoted string at the start of `s` (which must begin with `"`), including
/// both quotes; `None` if it is not terminated.
pub fn quoted_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    debug_assert_eq!(bytes.first(), Some(&b'"'));
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// One `;name[=value]` parameter of a header or URI parameter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
}

/// Iterates `;name=value` parameters. The input is what follows the element the
/// parameters belong to, starting at (optional white space and) the first `;`.
/// Malformed parameters (empty names, a stray character) end the iteration with an
/// `Err`, so that the validator can reject `;;`.
pub fn params(s: &str) -> ParamIter<'_> {
    ParamIter { rest: s }
}

#[derive(Clone)]
pub struct ParamIter<'a> {
    rest: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadParam;

impl<'a> Iterator for ParamIter<'a> {
    type Item = Result<Param<'a>, BadParam>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = trim_lws_start(self.rest);
        if rest.is_empty() {
            return None;
        }
        let Some(rest) = rest.strip_prefix(';') else {
            self.rest = "";
            return Some(Err(BadParam));
        };
        let rest = trim_lws_start(rest);
        let name_len = rest.bytes().take_while(|&b| is_token_char(b)).count();
        if name_len == 0 {
            self.rest = "";
            return Some(Err(BadParam));
        }
        let name = &rest[..name_len];
        let after = trim_lws_start(&rest[name_len..]);
        if let Some(value) = after.strip_prefix('=') {
            let value = trim_lws_start(value);
            let len = if value.starts_with('"') {
                match quoted_len(value) {
                    Some(len) => len,
                    None => {
                        self.rest = "";
                        return Some(Err(BadParam));
                    }
                }
            } else {
                // token, host, or an IPv6 reference like [2001:db8::1]
                value
                    .bytes()
                    .take_while(|&b| is_token_char(b) || matches!(b, b':' | b'[' | b']'))
                    .count()
            };
            if len == 0 {
                self.rest = "";
                return Some(Err(BadParam));
            }
            self.rest = &value[len..];
            Some(Ok(Param {
                name,
                value: Some(&value[..len]),
            }))
        } else {
            self.rest = after;
            Some(Ok(Param { name, value: None }))
        }
    }
}

/// Looks a parameter up by case-insensitive name. `Some(None)` is a flag parameter.
pub fn find_param<'a>(params_text: &'a str, name: &str) -> Option<Option<&'a str>> {
    params(params_text)
        .map_while(Result::ok)
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value)
}

/// Decimal digits to `u32`, rejecting empty input, signs and overflow.
pub fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are legal (RFC 4475 §3.1.1.1) and must not count towards overflow.
    let significant = s.trim_start_matches('0');
    if significant.is_empty() {
        return Some(0);
    }
    significant.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let items: Vec<_> = split_list(r#""a, b" <sip:x@y;p=1,2>, <sip:z>  ,w"#).collect();
        assert_eq!(items, vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z>", "w"]);
        let items: Vec<_> = split_list("a,,b").collect();
        assert_eq!(items, vec!["a", "", "b"]);
    }

    #[test]
    fn param_iteration() {
        let p: Vec<_> = params(" ;branch=z9hG4bK1 ; rport;received=[::1];x=\"q;,\"").collect();
        assert_eq!(
            p,
            vec![
                Ok(Param {
                    name: "branch",
                    value: Some("z9hG4bK1")
                }),
                Ok(Param {
                    name: "rport",
                    value: None
                }),
                Ok(Param {
                    name: "received",
                    value: Some("[::1]")
                }),
                Ok(Param {
                    name: "x",
                    value: Some("\"q;,\"")
                }),
            ]
        );
        assert!(params(";;").any(|p| p.is_err()));
        assert!(params(";a=\"open").any(|p| p.is_err()));
        assert_eq!(find_param(";a=1;TAG=x", "tag"), Some(Some("x")));
        assert_eq!(find_param(";lr", "lr"), Some(None));
    }

    #[test]
    fn u32_parsing() {
        assert_eq!(parse_u32("0009"), Some(9));
        assert_eq!(parse_u32("4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32("4294967296"), None);
        assert_eq!(parse_u32("000000000000000000001"), Some(1));
        assert_eq!(parse_u32("-1"), None);
        assert_eq!(parse_u32(""), None);
    }
}
