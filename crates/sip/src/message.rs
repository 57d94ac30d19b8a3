//! A received or built SIP message: one `Bytes` buffer plus the offsets of its parts.
//!
//! Parsing finds the start line, every header line (with folds) and the body, and
//! records them as spans; nothing is copied. Typed views (Via, CSeq, From/To, URIs)
//! are parsed on demand from those spans, so a message that is only forwarded never
//! pays for structure it does not use. The header section must be UTF-8 (RFC 3261
//! allows UTF-8 text in headers, nothing else); the body is opaque bytes.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::header::HeaderName;
use crate::method::Method;
use crate::name_addr::NameAddr;
use crate::scan::{self, split_list};
use crate::via::Via;

/// Offsets into a message buffer. Messages are bounded far below 4 GiB, so `u32` keeps
/// header tables compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// One header line as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub(crate) name_span: Span,
    pub(crate) value: Span,
    /// The whole line, from the name through the CRLF ending its last fold.
    pub(crate) line: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request {
        method: Span,
        uri: Span,
        version: Span,
    },
    Response {
        version: Span,
        code: u16,
        reason: Span,
    },
}

/// What the Content-Length header(s) said, judged against the bytes present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentLength {
    /// None present: the body is the rest of the datagram (RFC 3261 §18.3).
    Absent,
    Declared(usize),
    /// Not a decimal number (e.g. negative).
    Invalid,
    /// Several Content-Length headers that disagree.
    Conflicting,
    /// More octets declared than the message holds.
    Exceeds {
        declared: usize,
        available: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message larger than 4 GiB")]
    TooLarge,
    #[error("malformed start line")]
    BadStartLine,
    #[error("malformed status line")]
    BadStatusLine,
    #[error("header section is not valid UTF-8")]
    NotUtf8,
}

/// A header that is missing or cannot be parsed, named so that the `400` can say which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("missing {0:?} header")]
    Missing(HeaderName),
    #[error("malformed {0:?} header")]
    Malformed(HeaderName),
    #[error("more than one {0:?} header")]
    Repeated(HeaderName),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: Method<'a>,
}

#[derive(Clone)]
pub struct Message {
    pub(crate) buf: Bytes,
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<Header>,
    /// Where the header section ends: just past the blank line (or the buffer end).
    pub(crate) head_end: u32,
    /// Where the first header line begins.
    pub(crate) headers_start: u32,
    pub(crate) body: Span,
    pub(crate) content_length: ContentLength,
    /// The first line that is neither a header nor a fold.
    pub(crate) malformed_line: Option<Span>,
}

impl Message {
    /// Parses one whole message: a UDP datagram, or a frame cut by
    /// [`crate::framing::frame`]. Octets beyond `Content-Length` are ignored (§18.3).
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        if buf.len() > u32::MAX as usize {
            return Err(ParseError::TooLarge);
        }
        let bytes = &buf[..];
        // RFC 3261 §7.5: ignore CRLFs before the start line.
        let first = bytes
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(ParseError::Empty)?;
        let (start_end, mut pos) = line_end(bytes, first);
        let start = parse_start_line(bytes, first, start_end)?;

        let headers_start = pos;
        let mut headers: Vec<Header> = Vec::with_capacity(16);
        let mut malformed_line = None;
        // Whether the previous line was a header (or a fold of one) that a fold may continue.
        let mut in_header = false;
        let head_end = loop {
            if pos >= bytes.len() {
                break bytes.len();
            }
            let (end, next) = line_end(bytes, pos);
            if end == pos {
                break next;
            }
            let b = bytes[pos];
            if b == b' ' || b == b'\t' {
                // A fold continues the previous line: a header's value, or a malformed line
                // (whose continuation must not leak into the header before it).
                match headers.last_mut() {
                    Some(h) if in_header => {
                        let trimmed = trim_end(bytes, pos, end);
                        if trimmed > pos && !only_ws(&bytes[pos..end]) {
                            if h.value.is_empty() {
                                h.value = Span::new(skip_ws(bytes, pos, end), trimmed);
                            } else {
                                h.value.end = trimmed as u32;
                            }
                        }
                        h.line.end = next as u32;
                    }
                    _ => malformed_line = malformed_line.or(Some(Span::new(pos, end))),
                }
            } else {
                match parse_header_line(bytes, pos, end, next) {
                    Some(h) => {
                        headers.push(h);
                        in_header = true;
                    }
                    None => {
                        malformed_line = malformed_line.or(Some(Span::new(pos, end)));
                        in_header = false;
                    }
                }
            }
            pos = next;
        };
        if std::str::from_utf8(&bytes[..head_end]).is_err() {
            return Err(ParseError::NotUtf8);
        }
        let mut msg = Message {
            start,
            headers,
            head_end: head_end as u32,
            headers_start: headers_start as u32,
            body: Span::new(head_end, bytes.len()),
            content_length: ContentLength::Absent,
            malformed_line,
            buf,
        };
        msg.content_length = msg.judge_content_length();
        if let ContentLength::Declared(n) = msg.content_length {
            msg.body = Span::new(head_end, head_end + n);
        }
        Ok(msg)
    }

    fn judge_content_length(&self) -> ContentLength {
        let mut declared = None;
        for value in self.get_all(HeaderName::ContentLength) {
            let Some(n) = scan::parse_u32(value) else {
                return ContentLength::Invalid;
            };
            match declared {
                Some(prev) if prev != n => return ContentLength::Conflicting,
                _ => declared = Some(n),
            }
        }
        match declared {
            None => ContentLength::Absent,
            Some(n) => {
                let available = self.buf.len() - self.head_end as usize;
                if n as usize > available {
                    ContentLength::Exceeds {
                        declared: n as usize,
                        available,
                    }
                } else {
                    ContentLength::Declared(n as usize)
                }
            }
        }
    }

    pub(crate) fn text(&self, span: Span) -> &str {
        let bytes = &self.buf[span.range()];
        debug_assert!(
            std::str::from_utf8(bytes).is_ok(),
            "span {span:?} is not UTF-8"
        );
        // SAFETY: every span lies in the header section, which `parse` validated as
        // UTF-8 as a whole (the builder writes it from `&str` pieces). Spans start and end
        // next to ASCII delimiters (SP, HT, ':', CR, LF) or at the section's ends, and an
        // ASCII byte is never inside a multi-byte UTF-8 sequence, so each span is itself
        // valid UTF-8. Re-validating every access cost ~12% of parse + validate.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The message exactly as received or built.
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The message up to `Content-Length` (what is sent on; trailing noise dropped).
    pub fn wire(&self) -> Bytes {
        self.buf.slice(..self.body.end as usize)
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<Method<'_>> {
        match self.start {
            StartLine::Request { method, .. } => Some(Method::parse(self.text(method))),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI text as written.
    pub fn request_uri(&self) -> Option<&str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(self.text(uri)),
            StartLine::Response { .. } => None,
        }
    }

    pub fn version(&self) -> &str {
        match self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => {
                self.text(version)
            }
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self.start {
            StartLine::Response { reason, .. } => Some(self.text(reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// All header lines in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'_>> {
        self.headers.iter().map(|h| HeaderRef {
            msg: self,
            header: h,
        })
    }

    /// The first header line of this name.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| self.text(h.value))
    }

    /// Every header line of this name, each whole (list values not split).
    pub fn get_all(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| self.text(h.value))
    }

    /// An extension header by its name (case-insensitive).
    pub fn header_named(&self, name: &str) -> Option<&str> {
        let known = HeaderName::parse(name);
        self.headers
            .iter()
            .find(|h| {
                h.name == known
                    && (known != HeaderName::Other
                        || self.text(h.name_span).eq_ignore_ascii_case(name))
            })
            .map(|h| self.text(h.value))
    }

    /// Every value of a list header, across lines and commas, in order.
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.get_all(name).flat_map(split_list)
    }

    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    pub(crate) fn single(&self, name: HeaderName) -> Result<&str, HeaderError> {
        let mut all = self.get_all(name);
        let first = all.next().ok_or(HeaderError::Missing(name))?;
        if all.next().is_some() {
            return Err(HeaderError::Repeated(name));
        }
        Ok(first)
    }

    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let id = self.single(HeaderName::CallId)?;
        if id.is_empty() || id.bytes().any(scan::is_lws) {
            return Err(HeaderError::Malformed(HeaderName::CallId));
        }
        Ok(id)
    }

    pub fn cseq(&self) -> Result<CSeq<'_>, HeaderError> {
        let value = self.single(HeaderName::CSeq)?;
        let malformed = HeaderError::Malformed(HeaderName::CSeq);
        let digits = value.bytes().take_while(u8::is_ascii_digit).count();
        let seq = scan::parse_u32(&value[..digits]).ok_or(malformed)?;
        let rest = &value[digits..];
        let method = scan::trim_lws(rest);
        if method.len() == rest.len() || !scan::is_token(method) {
            return Err(malformed);
        }
        Ok(CSeq {
            seq,
            method: Method::parse(method),
        })
    }

    pub fn from(&self) -> Result<NameAddr<'_>, HeaderError> {
        self.name_addr(HeaderName::From)
    }

    pub fn to(&self) -> Result<NameAddr<'_>, HeaderError> {
        self.name_addr(HeaderName::To)
    }

    /// The value's parts, located but not checked: `validate` checks the URI and
    /// parameters of From and To once, when the message arrives.
    fn name_addr(&self, name: HeaderName) -> Result<NameAddr<'_>, HeaderError> {
        NameAddr::locate(self.single(name)?).map_err(|_| HeaderError::Malformed(name))
    }

    pub fn top_via(&self) -> Result<Via<'_>, HeaderError> {
        let top = self
            .values(HeaderName::Via)
            .next()
            .ok_or(HeaderError::Missing(HeaderName::Via))?;
        Via::parse(top).map_err(|_| HeaderError::Malformed(HeaderName::Via))
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = &str> {
        self.values(HeaderName::Via)
    }

    /// `Ok(None)` when absent (RFC 2543 peers omit it).
    pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        match self.get_all(HeaderName::MaxForwards).next() {
            None => Ok(None),
            Some(_) => {
                let v = self.single(HeaderName::MaxForwards)?;
                scan::parse_u32(v)
                    .map(Some)
                    .ok_or(HeaderError::Malformed(HeaderName::MaxForwards))
            }
        }
    }

    pub fn content_length(&self) -> ContentLength {
        self.content_length
    }

    /// The body, sharing the message buffer.
    pub fn body(&self) -> Bytes {
        self.buf.slice(self.body.range())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header(HeaderName::ContentType)
    }

    /// The first line that was neither a header nor a fold, if any.
    pub fn malformed_line(&self) -> Option<&str> {
        self.malformed_line.map(|s| self.text(s))
    }

    /// Whether the header section ends with its blank line. A datagram may lack it (the
    /// header section then runs to the end), a message that is sent on must not.
    pub(crate) fn head_terminated(&self) -> bool {
        let head = &self.buf[..self.head_end as usize];
        head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n")
    }

    /// The message with canonical long header names, folds undone, one space after each
    /// colon and the start line normalised; the body unchanged. Two messages mean the same
    /// thing when their canonical forms are equal. A malformed line (see
    /// [`Message::malformed_line`]) is kept, right after the start line, so that a
    /// message and its canonical form get the same verdict from [`crate::validate`].
    pub fn canonical(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.buf.len());
        match self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => {
                write_parts(
                    &mut out,
                    &[
                        self.text(method),
                        " ",
                        self.text(uri),
                        " ",
                        &self.text(version).to_ascii_uppercase(),
                    ],
                );
            }
            StartLine::Response {
                version,
                code,
                reason,
            } => {
                write_parts(&mut out, &[&self.text(version).to_ascii_uppercase(), " "]);
                out.put_slice(format!("{code:03} ").as_bytes());
                out.put_slice(self.text(reason).as_bytes());
            }
        }
        out.put_slice(b"\r\n");
        if let Some(line) = self.malformed_line() {
            out.put_slice(line.as_bytes());
            out.put_slice(b"\r\n");
        }
        for h in self.headers() {
            out.put_slice(h.canonical_name().as_bytes());
            out.put_slice(b": ");
            out.put_slice(unfold(h.value()).as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(&self.buf[self.body.range()]);
        out.freeze()
    }
}

fn write_parts(out: &mut BytesMut, parts: &[&str]) {
    for p in parts {
        out.put_slice(p.as_bytes());
    }
}

/// Replaces each fold (a run of white space that holds a line break) with one space.
/// Other white space is kept as written: it may sit inside a quoted string, whose text a
/// fold elsewhere in the value must not change.
pub fn unfold(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\r', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let is_ws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(value.len());
    let mut i = 0;
    while i < bytes.len() {
        // Runs end at ASCII octets, so the slices below fall on character boundaries.
        let start = i;
        let ws = is_ws(bytes[i]);
        while i < bytes.len() && is_ws(bytes[i]) == ws {
            i += 1;
        }
        let run = &value[start..i];
        if ws && run.contains(['\r', '\n']) {
            out.push(' ');
        } else {
            out.push_str(run);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("text", &String::from_utf8_lossy(&self.buf))
            .finish()
    }
}

/// A header line borrowed from its message.
#[derive(Clone, Copy)]
pub struct HeaderRef<'m> {
    msg: &'m Message,
    header: &'m Header,
}

impl<'m> HeaderRef<'m> {
    pub fn name(&self) -> HeaderName {
        self.header.name
    }
    /// The name as written (e.g. `v` or `VIA`).
    pub fn raw_name(&self) -> &'m str {
        self.msg.text(self.header.name_span)
    }
    /// The long form for known headers, the written name otherwise.
    pub fn canonical_name(&self) -> &'m str {
        self.header.name.as_str().unwrap_or_else(|| self.raw_name())
    }
    /// The value as written, folds included, trimmed at both ends.
    pub fn value(&self) -> &'m str {
        self.msg.text(self.header.value)
    }
}

/// Returns (end of line content, start of next line). Lines end at LF, with or without CR.
fn line_end(bytes: &[u8], from: usize) -> (usize, usize) {
    match memchr::memchr(b'\n', &bytes[from..]) {
        Some(i) => {
            let lf = from + i;
            let end = if lf > from && bytes[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            (end, lf + 1)
        }
        None => (bytes.len(), bytes.len()),
    }
}

/// White space around a header value. A CR that does not end a line is not legal in a
/// header section; like the `scan` helpers, the parser treats it as white space, so that
/// `abc<CR><CR><LF>` means `abc` (and its canonical form means the same).
fn is_value_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

fn skip_ws(bytes: &[u8], mut from: usize, end: usize) -> usize {
    while from < end && is_value_ws(bytes[from]) {
        from += 1;
    }
    from
}

fn trim_end(bytes: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && is_value_ws(bytes[end - 1]) {
        end -= 1;
    }
    end
}

fn only_ws(s: &[u8]) -> bool {
    s.iter().all(|&b| is_value_ws(b))
}

fn parse_header_line(bytes: &[u8], start: usize, end: usize, next: usize) -> Option<Header> {
    let colon = start + memchr::memchr(b':', &bytes[start..end])?;
    // Only SP and HT may sit between a name and its colon.
    let mut name_end = colon;
    while name_end > start && matches!(bytes[name_end - 1], b' ' | b'\t') {
        name_end -= 1;
    }
    let name = &bytes[start..name_end];
    if name.is_empty() || !name.iter().all(|&b| scan::is_token_char(b)) {
        return None;
    }
    let name_text = std::str::from_utf8(name).ok()?;
    let value_start = skip_ws(bytes, colon + 1, end);
    let value_end = trim_end(bytes, value_start, end);
    Some(Header {
        name: HeaderName::parse(name_text),
        name_span: Span::new(start, name_end),
        value: Span::new(value_start, value_end),
        line: Span::new(start, next),
    })
}

fn parse_start_line(bytes: &[u8], start: usize, end: usize) -> Result<StartLine, ParseError> {
    let line = &bytes[start..end];
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::BadStatusLine)?;
        let rest = &line[sp1 + 1..];
        let code_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if code_len != 3 {
            return Err(ParseError::BadStatusLine);
        }
        let code = rest[..3]
            .iter()
            .fold(0u16, |acc, &b| acc * 10 + u16::from(b - b'0'));
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStatusLine);
        }
        let reason_start = match rest.get(3) {
            None => start + sp1 + 1 + 3,
            Some(b' ') => start + sp1 + 1 + 4,
            Some(_) => return Err(ParseError::BadStatusLine),
        };
        return Ok(StartLine::Response {
            version: Span::new(start, start + sp1),
            code,
            reason: Span::new(reason_start, end),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::BadStartLine)?;
    let sp2 = memchr::memrchr(b' ', line).ok_or(ParseError::BadStartLine)?;
    if sp2 <= sp1 || !line[..sp1].iter().all(|&b| scan::is_token_char(b)) || sp1 == 0 {
        return Err(ParseError::BadStartLine);
    }
    Ok(StartLine::Request {
        method: Span::new(start, start + sp1),
        uri: Span::new(start + sp1 + 1, start + sp2),
        version: Span::new(start + sp2 + 1, end),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const INVITE: &str = "INVITE sip:4001234567@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n\
        v: SIP/2.0/TCP 10.0.0.3;branch=z9hG4bK3\r\n\
        Max-Forwards: 70\r\n\
        To: <sip:4001234567@127.0.0.1>\r\n\
        f: \"Alice\" <sip:13800138000@carrier.example>;tag=1928301774\r\n\
        i: a84b4c76e66710@pc33\r\n\
        CSeq  :  314159 INVITE\r\n\
        Subject: folded\r\n  across\r\n\tlines\r\n\
        Content-Type: application/sdp\r\n\
        l: 4\r\n\
        \r\n\
        v=0\r\ngarbage";

    #[test]
    fn parses_request_parts() {
        let m = parse(INVITE);
        assert!(m.is_request());
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.request_uri(), Some("sip:4001234567@127.0.0.1"));
        assert_eq!(m.version(), "SIP/2.0");
        assert_eq!(m.call_id(), Ok("a84b4c76e66710@pc33"));
        assert_eq!(
            m.cseq(),
            Ok(CSeq {
                seq: 314159,
                method: Method::Invite
            })
        );
        assert_eq!(m.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(m.to().unwrap().tag(), None);
        assert_eq!(m.max_forwards(), Ok(Some(70)));
        assert_eq!(m.vias().count(), 3);
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(
            m.header(HeaderName::Subject),
            Some("folded\r\n  across\r\n\tlines")
        );
        assert_eq!(
            unfold(m.header(HeaderName::Subject).unwrap()),
            "folded across lines"
        );
        assert_eq!(m.content_length(), ContentLength::Declared(4));
        assert_eq!(&m.body()[..], b"v=0\r");
        assert_eq!(m.wire().len(), INVITE.len() - "\ngarbage".len());
    }

    #[test]
    fn parses_responses() {
        let m = parse("SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n");
        assert_eq!(m.status(), Some(180));
        assert_eq!(m.reason(), Some("Ringing"));
        let m = parse("SIP/2.0 100 \r\n\r\n");
        assert_eq!(m.reason(), Some(""));
        let m = parse("SIP/2.0 200\r\n\r\n");
        assert_eq!(m.reason(), Some(""));
        for bad in [
            "SIP/2.0 4294967301 Big\r\n\r\n",
            "SIP/2.0 099 x\r\n\r\n",
            "SIP/2.0 700 x\r\n\r\n",
            "SIP/2.0 20 x\r\n\r\n",
        ] {
            assert!(Message::parse(Bytes::from(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_length_judgement() {
        let m = parse("BYE sip:a@b SIP/2.0\r\nl: 10\r\n\r\nabc");
        assert_eq!(
            m.content_length(),
            ContentLength::Exceeds {
                declared: 10,
                available: 3
            }
        );
        let m = parse("BYE sip:a@b SIP/2.0\r\nl: -1\r\n\r\nabc");
        assert_eq!(m.content_length(), ContentLength::Invalid);
        let m = parse("BYE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nabc");
        assert_eq!(m.content_length(), ContentLength::Conflicting);
        let m = parse("BYE sip:a@b SIP/2.0\r\n\r\nabc");
        assert_eq!(m.content_length(), ContentLength::Absent);
        assert_eq!(&m.body()[..], b"abc");
    }

    #[test]
    fn header_section_without_blank_line() {
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n");
        assert_eq!(m.call_id(), Ok("x"));
        assert!(m.body().is_empty());
    }

    #[test]
    fn rejects_structural_garbage() {
        assert_eq!(
            Message::parse(Bytes::from_static(b"")).unwrap_err(),
            ParseError::Empty
        );
        assert_eq!(
            Message::parse(Bytes::from_static(b"\r\n\r\n")).unwrap_err(),
            ParseError::Empty
        );
        assert_eq!(
            Message::parse(Bytes::from_static(b"INVITE\r\n\r\n")).unwrap_err(),
            ParseError::BadStartLine
        );
        assert_eq!(
            Message::parse(Bytes::from_static(
                b"OPTIONS sip:a SIP/2.0\r\nSubject: \xff\r\n\r\n"
            ))
            .unwrap_err(),
            ParseError::NotUtf8
        );
    }

    #[test]
    fn malformed_header_line_is_recorded_not_fatal() {
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nthis is not a header\r\nCall-ID: x\r\n\r\n");
        assert_eq!(m.malformed_line(), Some("this is not a header"));
        assert_eq!(m.call_id(), Ok("x"));
    }

    #[test]
    fn repeated_single_headers() {
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\ni: y\r\n\r\n");
        assert_eq!(m.call_id(), Err(HeaderError::Repeated(HeaderName::CallId)));
    }

    #[test]
    fn fold_after_a_malformed_line_stays_out_of_the_header_before_it() {
        let m =
            parse("OPTIONS sip:a@b SIP/2.0\r\nSubject: a\r\ngarbage\r\n b\r\nCall-ID: x\r\n\r\n");
        assert_eq!(m.header(HeaderName::Subject), Some("a"));
        assert_eq!(m.malformed_line(), Some("garbage"));
        assert_eq!(m.call_id(), Ok("x"));
        // A fold after a good header still continues it.
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nSubject: a\r\n b\r\n\r\n");
        assert_eq!(m.header(HeaderName::Subject), Some("a\r\n b"));
        assert_eq!(m.malformed_line(), None);
    }

    #[test]
    fn stray_cr_around_a_value_is_white_space() {
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: \rabc\r\r\nSubject:\r\r\n\r\n");
        assert_eq!(m.call_id(), Ok("abc"));
        assert_eq!(m.header(HeaderName::Subject), Some(""));
        let canonical = m.canonical();
        assert_eq!(
            &canonical[..],
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: abc\r\nSubject: \r\n\r\n"
        );
        assert_eq!(
            Message::parse(canonical.clone()).unwrap().canonical(),
            canonical
        );
        // Not in a name, though: `Call-ID<CR>:` is no header.
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID\r: abc\r\n\r\n");
        assert_eq!(m.malformed_line(), Some("Call-ID\r: abc"));
    }

    #[test]
    fn canonical_form_keeps_the_malformed_line() {
        for text in [
            "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nnot a header\r\n\r\n",
            "OPTIONS sip:a@b SIP/2.0\r\n  fold without a header\r\nCall-ID: x\r\n\r\n",
        ] {
            let m = parse(text);
            let canonical = Message::parse(m.canonical()).unwrap();
            assert_eq!(canonical.malformed_line(), m.malformed_line(), "{text}");
            assert_eq!(canonical.call_id(), Ok("x"));
            assert_eq!(canonical.canonical(), m.canonical());
        }
    }

    #[test]
    fn head_termination() {
        assert!(parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n").head_terminated());
        assert!(parse("OPTIONS sip:a@b SIP/2.0\n\nbody").head_terminated());
        assert!(!parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n").head_terminated());
        assert!(!parse("OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x").head_terminated());
        assert!(!parse("\r\n\r\nOPTIONS sip:a@b SIP/2.0").head_terminated());
    }

    #[test]
    fn unfold_replaces_folds_only() {
        assert_eq!(unfold("a\r\n  b \r\n\tc"), "a b c");
        // White space that is not part of a fold stays, inside quotes or not.
        assert_eq!(
            unfold("\"Zhang  San\"\r\n <sip:a@b>"),
            "\"Zhang  San\" <sip:a@b>"
        );
        assert_eq!(unfold("a  b"), "a  b");
        assert_eq!(unfold("\u{5f20}\r\n \u{4e09}"), "\u{5f20} \u{4e09}");
    }

    #[test]
    fn canonical_form() {
        let m = parse("OPTIONS sip:a@b sip/2.0\r\nv:SIP/2.0/UDP h\r\nX-Y :\r\n z\r\n\r\n");
        assert_eq!(
            &m.canonical()[..],
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nX-Y: z\r\n\r\n"
        );
    }
}
