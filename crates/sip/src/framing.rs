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
        FrameLimits { max_header_bytes: 16 * 1024, max_body_bytes: 64 * 1024 }
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
    let leading = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    if leading > 0 {
        if buf.starts_with(b"\r\n\r\n") {
            return Ok(Some(Frame::KeepAlive { len: 4, pong: true }));
        }
        if leading == buf.len() && buf.len() < 4 && b"\r\n\r\n".starts_with(buf) {
            // Could still become a double-CRLF ping.
            return Ok(None);
        }
        return Ok(Some(Frame::KeepAlive { len: leading, pong: false }));
    }
    let Some(header_end) = find_header_end(buf, limits.max_header_bytes) else {
        if buf.len() > limits.max_header_bytes {
            return Err(FramingError::HeaderTooLarge { limit: limits.max_header_bytes });
        }
        return Ok(None);
    };
    let body_len = content_length(&buf[..header_end])?.ok_or(FramingError::MissingContentLength)?;
    if body_len > limits.max_body_bytes {
        return Err(FramingError::BodyTooLarge { declared: body_len, limit: limits.max_body_bytes });
    }
    let len = header_end + body_len;
    if buf.len() < len { Ok(None) } else { Ok(Some(Frame::Message { len })) }
}

/// Offset just past the `CRLFCRLF` that ends the header section, if it lies within `max`.
fn find_header_end(buf: &[u8], max: usize) -> Option<usize> {
    let window = &buf[..buf.len().min(max)];
    memchr::memmem::find(window, b"\r\n\r\n").map(|at| at + 4)
}

/// The body length a header section declares; `None` if it declares none.
///
/// Every `Content-Length` (or compact `l`) header is read; differing values are a framing
/// error because either choice would desynchronise the stream.
pub fn content_length(head: &[u8]) -> Result<Option<usize>, FramingError> {
    let mut found: Option<usize> = None;
    let mut lines = head.split(|&b| b == b'\n').peekable();
    lines.next(); // start line
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else { continue };
        let name = trim_ascii_ws(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value = trim_ascii_ws(&line[colon + 1..]).to_vec();
        // A folded value continues on lines that start with whitespace.
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                let next = next.strip_suffix(b"\r").unwrap_or(next);
                value.extend_from_slice(trim_ascii_ws(next));
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

fn trim_ascii_ws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |p| p + 1);
    &s[start..end.max(start)]
}

/// A non-empty run of ASCII digits that fits in `usize`.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &b| {
        if b.is_ascii_digit() { acc.checked_mul(10)?.checked_add(usize::from(b - b'0')) } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FrameLimits = FrameLimits { max_header_bytes: 1024, max_body_bytes: 100 };

    #[test]
    fn complete_message_with_body() {
        let msg = b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcOPTIONS";
        assert_eq!(frame(msg, &LIMITS), Ok(Some(Frame::Message { len: msg.len() - 7 })));
    }

    #[test]
    fn needs_more_bytes_for_headers_and_body() {
        assert_eq!(frame(b"INVITE sip:a@b SIP/2.0\r\nl: 3\r\n", &LIMITS), Ok(None));
        assert_eq!(frame(b"INVITE sip:a@b SIP/2.0\r\nl: 3\r\n\r\nab", &LIMITS), Ok(None));
    }

    #[test]
    fn compact_name_and_space_before_colon() {
        let msg = b"BYE sip:a@b SIP/2.0\r\nL  :  2\r\n\r\nok";
        assert_eq!(frame(msg, &LIMITS), Ok(Some(Frame::Message { len: msg.len() })));
    }

    #[test]
    fn folded_content_length() {
        let msg = b"BYE sip:a@b SIP/2.0\r\nContent-Length:\r\n 2\r\n\r\nok";
        assert_eq!(frame(msg, &LIMITS), Ok(Some(Frame::Message { len: msg.len() })));
    }

    #[test]
    fn keepalives() {
        assert_eq!(frame(b"\r\n\r\nOPTIONS", &LIMITS), Ok(Some(Frame::KeepAlive { len: 4, pong: true })));
        assert_eq!(frame(b"\r\n", &LIMITS), Ok(None));
        assert_eq!(frame(b"\r\nOPT", &LIMITS), Ok(Some(Frame::KeepAlive { len: 2, pong: false })));
    }

    #[test]
    fn errors() {
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n", &LIMITS),
            Err(FramingError::MissingContentLength)
        );
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n", &LIMITS),
            Err(FramingError::BadContentLength)
        );
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nl: 5\r\nContent-Length: 13\r\n\r\n", &LIMITS),
            Err(FramingError::ConflictingContentLength)
        );
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nl: 101\r\n\r\n", &LIMITS),
            Err(FramingError::BodyTooLarge { declared: 101, limit: 100 })
        );
        let huge = vec![b'a'; 2000];
        assert_eq!(frame(&huge, &LIMITS), Err(FramingError::HeaderTooLarge { limit: 1024 }));
        assert_eq!(
            frame(b"BYE sip:a@b SIP/2.0\r\nl: 99999999999999999999999\r\n\r\n", &LIMITS),
            Err(FramingError::BadContentLength)
        );
    }
}
