//! Stream framing: where one SIP message ends in a TCP byte stream.
//!
//! Over a stream transport a message ends after its header section plus exactly
//! `Content-Length` body octets (RFC 3261 §18.3), so the framer only needs to find
//! the blank line and that one header. It does not parse anything else: the full
//! parser runs once on the complete frame. Limits bound what a peer can make us
//! buffer before we give up on the connection.

use thiserror::Error;

/// Bounds on what one message may occupy in a connection's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Start line plus headers plus the blank line.
    pub max_header_bytes: usize,
    pub max_body_bytes: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// What sits at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// CR/LF octets before a start line (RFC 3261 §7.5 says to ignore them). `pong` is
    /// true for the RFC 5626 double-CRLF keep-alive ping, which expects a single CRLF back.
    KeepAlive { len: usize, pong: bool },
    /// One complete message of `len` octets (headers and body).
    Message { len: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("header section exceeds {limit} bytes")]
    HeaderTooLarge { limit: usize },
    #[error("body of {declared} bytes exceeds the limit of {limit}")]
    BodyTooLarge { declared: usize, limit: usize },
    #[error("Content-Length is required on a stream transport")]
    MissingContentLength,
    #[error("Content-Length is not a non-negative decimal number")]
    BadContentLength,
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
}

/// Finds the first frame in `buf`. `Ok(None)` means more bytes are needed.
pub fn frame(buf: &[u8], limits: &FrameLimits) -> Result<Option<Frame>, FramingError> {
    let leading = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if leading > 0 {
        if buf.starts_with(b"\r\n\r\n") {
            return Ok(Some(Frame::KeepAlive { len: 4, pong: true }));
        }
        if leading == buf.len() && buf.len() < 4 && b"\r\n\r\n".starts_with(buf) {
            // Could still become a double-CRLF ping.
            return Ok(None);
        }
        return Ok(Some(Frame::KeepAlive {
            len: leading,
            pong: false,
        }));
    }
    let Some(header_end) = find_header_end(buf, limits.max_header_bytes) else {
        if buf.len() > limits.max_header_bytes {
            return Err(FramingError::HeaderTooLarge {
                limit: limits.max_header_bytes,
            });
        }
        return Ok(None);
    };
    let body_len = content_length(&buf[..header_end])?.ok_or(FramingError::MissingContentLength)?;
    if body_len > limits.max_body_bytes {
        return Err(FramingError::BodyTooLarge {
            declared: body_len,
            limit: limits.max_body_bytes,
        });
    }
    let len = header_end + body_len;
    if buf.len() < len {
        Ok(None)
    } else {
        Ok(Some(Frame::Message { len }))
    }
}

/// Offset just past the empty line that ends the header section, if it lies within `max`.
///
/// The empty line is found as [`crate::Message::parse`] finds it: lines end at LF, with or
/// without CR. Were the framer to wait for `CRLFCRLF` while the parser stops at an earlier
/// `LF LF`, the two would disagree on which octets are headers and which are body.
fn find_header_end(buf: &[u8], max: usize) -> Option<usize> {
    let window = &buf[..buf.len().min(max)];
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &window[from..]) {
        let lf = from + i;
        match window.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if window.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => from = lf + 1,
        }
    }
    None
}

/// The body length a header section declares; `None` if it declares none.
///
/// Every `Content-Length` (or compact `l`) header is read; differing values are a framing
/// error because either choice would desynchronise the stream. Lines are read as the
/// parser reads them, so that both agree on the body length: a line that starts with
/// white space is a fold of the line before (never a header of its own), and the pieces
/// of a folded value are joined by white space (so `1` folded onto `2` is not `12`).
pub fn content_length(head: &[u8]) -> Result<Option<usize>, FramingError> {
    let mut found: Option<usize> = None;
    let mut lines = head.split(|&b| b == b'\n').peekable();
    lines.next(); // start line
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_fold(line) {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = trim_ascii_ws(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value = trim_value(&line[colon + 1..]).to_vec();
        // A folded value continues on lines that start with whitespace.
        while let Some(next) = lines.peek() {
            if is_fold(next) {
                let piece = trim_value(next.strip_suffix(b"\r").unwrap_or(next));
                if !piece.is_empty() {
                    if !value.is_empty() {
                        value.push(b' ');
                    }
                    value.extend_from_slice(piece);
                }
                lines.next();
            } else {
                break;
            }
        }
        let parsed = parse_decimal(&value).ok_or(FramingError::BadContentLength)?;
        match found {
            Some(prev) if prev != parsed => return Err(FramingError::ConflictingContentLength),
            _ => found = Some(parsed),
        }
    }
    Ok(found)
}

fn is_fold(line: &[u8]) -> bool {
    line.first().is_some_and(|b| matches!(b, b' ' | b'\t'))
}

/// Trims a value as the parser does: a CR that does not end a line counts as white space.
fn trim_value(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r'))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

fn trim_ascii_ws(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

/// A non-empty run of ASCII digits that fits in `usize`.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(usize::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FrameLimits = FrameLimits {
        max_header_bytes: 1024,
        max_body_bytes: 100,
    };

    #[test]
    fn complete_message_with_body() {
        let msg = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcOPTIONS";
        assert_eq!(
            frame(msg, &LIMITS),
            Ok(Some(Frame::Message { len: msg.len() - 7 }))
        );
    }

    #[test]
    fn needs_more_bytes_for_headers_and_body() {
        assert_eq!(
            frame(b"INVITE sip:a@b SIP/2.0\r\nl: 3\r\n", &LIMITS),
            Ok(None)
        );
        assert_eq!(
            frame(b"INVITE sip:a@b SIP/2.0\r\nl: 3\r\n\r\nab", &LIMITS),
            Ok(None)
        );
    }

    #[test]
    fn compact_name_and_space_before_colon() {
        let msg = b"BYE sip:a@b SIP/2.0\r\nL  :  2\r\n\r\nok";
        assert_eq!(
            frame(msg, &LIMITS),
            Ok(Some(Frame::Message { len: msg.len() }))
        );
    }

    #[test]
    fn folded_content_length() {
        let msg = b"BYE sip:a@b SIP/2.0\r\nContent-Length:\r\n 2\r\n\r\nok";
        assert_eq!(
            frame(msg, &LIMITS),
            Ok(Some(Frame::Message { len: msg.len() }))
        );
    }

    #[test]
    fn frame_ends_where_the_parser_ends_the_headers() {
        // An empty line of a bare LF ends the header section for the parser, so it does
        // for the framer: the `l: 5` after it is body, and there is no Content-Length.
        let msg = b"BYE sip:a@b SIP/2.0\r\n\nl: 5\r\n\r\nHELLO";
        assert_eq!(frame(msg, &LIMITS), Err(FramingError::MissingContentLength));
        let msg = b"BYE sip:a@b SIP/2.0\nl: 2\n\nokBYE";
        assert_eq!(
            frame(msg, &LIMITS),
            Ok(Some(Frame::Message { len: msg.len() - 3 }))
        );
        let msg = b"BYE sip:a@b SIP/2.0\r\nl: 2\n\r\nok";
        assert_eq!(
            frame(msg, &LIMITS),
            Ok(Some(Frame::Message { len: msg.len() }))
        );
        // A line holding only a stray CR is not empty.
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nl: 0\r\n\r\r\n", &LIMITS),
            Ok(None)
        );
    }

    #[test]
    fn content_length_is_read_as_the_parser_reads_it() {
        // A fold that looks like a Content-Length header belongs to the Subject.
        let msg = b"BYE sip:a@b SIP/2.0\r\nSubject: x\r\n l: 5\r\nl: 0\r\n\r\n";
        assert_eq!(
            frame(msg, &LIMITS),
            Ok(Some(Frame::Message { len: msg.len() }))
        );
        // Folded digits are two numbers, not one.
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nl: 1\r\n 2\r\n\r\n", &LIMITS),
            Err(FramingError::BadContentLength)
        );
        // A stray CR after the value is white space, as for the parser.
        let msg = b"BYE sip:a@b SIP/2.0\r\nl: 2\r\r\n\r\nok";
        assert_eq!(
            frame(msg, &LIMITS),
            Ok(Some(Frame::Message { len: msg.len() }))
        );
    }

    #[test]
    fn keepalives() {
        assert_eq!(
            frame(b"\r\n\r\nOPTIONS", &LIMITS),
            Ok(Some(Frame::KeepAlive { len: 4, pong: true }))
        );
        assert_eq!(frame(b"\r\n", &LIMITS), Ok(None));
        assert_eq!(
            frame(b"\r\nOPT", &LIMITS),
            Ok(Some(Frame::KeepAlive {
                len: 2,
                pong: false
            }))
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", &LIMITS),
            Err(FramingError::MissingContentLength)
        );
        assert_eq!(
            frame(
                b"BYE sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n",
                &LIMITS
            ),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(
            frame(
                b"BYE sip:a@b SIP/2.0\r\nl: 5\r\nContent-Length: 13\r\n\r\n",
                &LIMITS
            ),
            Err(FramingError::ConflictingContentLength)
        );
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nl: 101\r\n\r\n", &LIMITS),
            Err(FramingError::BodyTooLarge {
                declared: 101,
                limit: 100
            })
        );
        let huge = vec![b'a'; 2000];
        assert_eq!(
            frame(&huge, &LIMITS),
            Err(FramingError::HeaderTooLarge { limit: 1024 })
        );
        assert_eq!(
            frame(
                b"BYE sip:a@b SIP/2.0\r\nl: 99999999999999999999999\r\n\r\n",
                &LIMITS
            ),
            Err(FramingError::BadContentLength)
        );
    }
}
