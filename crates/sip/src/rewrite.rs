//! Editing a received message for forwarding without reparsing it: pop or push a Via,
//! rewrite the Request-URI, decrement Max-Forwards, add Record-Route or Route, replace
//! or drop headers. Edits are recorded against the original spans and applied in one
//! pass into one exactly-sized buffer. Octets after the body (datagram noise) are dropped.

use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;
use thiserror::Error;

use crate::header::HeaderName;
use crate::message::{Message, Span, StartLine};
use crate::scan::{find_unquoted, is_lws};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RewriteError {
    /// Max-Forwards reached zero: the request must be answered `483`, not forwarded.
    #[error("Max-Forwards exhausted")]
    TooManyHops,
    #[error("malformed Max-Forwards")]
    BadMaxForwards,
    #[error("the message has no Via to pop")]
    NoVia,
    #[error("not a request")]
    NotARequest,
}

#[derive(Debug, Clone)]
enum Insert<'a> {
    None,
    /// `prefix`, `value`, `suffix`: e.g. `"Via: "`, the value, `"\r\n"`.
    Text(&'static str, &'a str, &'static str),
    Number(u32),
}

#[derive(Debug, Clone)]
struct Edit<'a> {
    /// The original octets this edit replaces (empty for a pure insertion).
    at: Span,
    insert: Insert<'a>,
}

/// A set of edits on one message. Build it, call the edit methods, then [`Rewriter::finish`].
pub struct Rewriter<'m> {
    msg: &'m Message,
    edits: SmallVec<[Edit<'m>; 8]>,
    body: Option<(&'m str, &'m [u8])>,
}

impl<'m> Rewriter<'m> {
    pub fn new(msg: &'m Message) -> Rewriter<'m> {
        Rewriter {
            msg,
            edits: SmallVec::new(),
            body: None,
        }
    }

    /// Where new headers go when they belong on top.
    fn top(&self) -> Span {
        let at = self.msg.headers_start;
        Span { start: at, end: at }
    }

    /// Where new headers go when they belong at the end of the header section.
    fn bottom(&self) -> Span {
        let at = self
            .msg
            .headers
            .last()
            .map_or(self.msg.headers_start, |h| h.line.end);
        Span { start: at, end: at }
    }

    /// Removes the topmost Via value (a response going back one hop).
    pub fn pop_via(&mut self) -> Result<&mut Self, RewriteError> {
        let msg = self.msg;
        let h = msg
            .headers
            .iter()
            .find(|h| h.name == HeaderName::Via)
            .ok_or(RewriteError::NoVia)?;
        let value = msg.text(h.value);
        match find_unquoted(value, b',') {
            None => self.edits.push(Edit {
                at: h.line,
                insert: Insert::None,
            }),
            Some(comma) => {
                let mut end = comma + 1;
                while end < value.len() && is_lws(value.as_bytes()[end]) {
                    end += 1;
                }
                let at = Span {
                    start: h.value.start,
                    end: h.value.start + end as u32,
                };
                self.edits.push(Edit {
                    at,
                    insert: Insert::None,
                });
            }
        }
        Ok(self)
    }

    /// Adds a Via value on top (a request going forward one hop).
    pub fn push_via(&mut self, value: &'m str) -> &mut Self {
        let at = self
            .msg
            .headers
            .iter()
            .find(|h| h.name == HeaderName::Via)
            .map_or(self.top(), |h| Span {
                start: h.line.start,
                end: h.line.start,
            });
        self.edits.push(Edit {
            at,
            insert: Insert::Text("Via: ", value, "\r\n"),
        });
        self
    }

    pub fn set_request_uri(&mut self, uri: &'m str) -> Result<&mut Self, RewriteError> {
        let StartLine::Request { uri: span, .. } = self.msg.start else {
            return Err(RewriteError::NotARequest);
        };
        self.edits.push(Edit {
            at: span,
            insert: Insert::Text("", uri, ""),
        });
        Ok(self)
    }

    /// Decrements Max-Forwards (adding `Max-Forwards: 70` when absent, RFC 3261 §16.6)
    /// and returns the new value.
    pub fn decrement_max_forwards(&mut self) -> Result<u32, RewriteError> {
        let msg = self.msg;
        match msg
            .headers
            .iter()
            .find(|h| h.name == HeaderName::MaxForwards)
        {
            None => {
                let at = self.top();
                self.edits.push(Edit {
                    at,
                    insert: Insert::Text("Max-Forwards: ", "70", "\r\n"),
                });
                Ok(70)
            }
            Some(h) => {
                let n = crate::scan::parse_u32(msg.text(h.value))
                    .ok_or(RewriteError::BadMaxForwards)?;
                let n = n.checked_sub(1).ok_or(RewriteError::TooManyHops)?;
                self.edits.push(Edit {
                    at: h.value,
                    insert: Insert::Number(n),
                });
                Ok(n)
            }
        }
    }

    /// Adds a Record-Route value above any existing ones.
    pub fn add_record_route(&mut self, value: &'m str) -> &mut Self {
        let at = self.top();
        self.edits.push(Edit {
            at,
            insert: Insert::Text("Record-Route: ", value, "\r\n"),
        });
        self
    }

    /// Adds a Route value above any existing ones.
    pub fn add_route(&mut self, value: &'m str) -> &mut Self {
        let at = self.top();
        self.edits.push(Edit {
            at,
            insert: Insert::Text("Route: ", value, "\r\n"),
        });
        self
    }

    /// Removes every line of this header.
    pub fn remove_header(&mut self, name: HeaderName) -> &mut Self {
        for h in self.msg.headers.iter().filter(|h| h.name == name) {
            self.edits.push(Edit {
                at: h.line,
                insert: Insert::None,
            });
        }
        self
    }

    /// Appends a header at the end of the header section. `name` must be a known header.
    pub fn append_header(&mut self, name: HeaderName, value: &'m str) -> &mut Self {
        let at = self.bottom();
        let prefix = header_prefix(name);
        self.edits.push(Edit {
            at,
            insert: Insert::Text(prefix, value, "\r\n"),
        });
        self
    }

    /// Replaces the body, rewriting Content-Type and Content-Length to match.
    pub fn set_body(&mut self, content_type: &'m str, body: &'m [u8]) -> &mut Self {
        self.remove_header(HeaderName::ContentType);
        self.remove_header(HeaderName::ContentLength);
        self.body = Some((content_type, body));
        self
    }

    /// Applies the edits and returns the new message bytes. A datagram may end its header
    /// section without the blank line, or even without the CRLF of its last line; the
    /// result always has both, so that added headers start on lines of their own and the
    /// message can be framed on a stream.
    pub fn finish(&mut self) -> Bytes {
        let msg = self.msg;
        let src = &msg.buf[..];
        let body_span = msg.body;
        let (content_type, body) = match self.body {
            Some((ct, b)) => (Some(ct), b),
            None => (None, &src[body_span.range()]),
        };
        let mut edits = std::mem::take(&mut self.edits);
        if let Some(ct) = content_type {
            let at = self.bottom();
            edits.push(Edit {
                at,
                insert: Insert::Text("Content-Type: ", ct, "\r\n"),
            });
            edits.push(Edit {
                at,
                insert: Insert::Text("Content-Length: ", "", ""),
            });
            edits.push(Edit {
                at,
                insert: Insert::Number(body.len() as u32),
            });
            edits.push(Edit {
                at,
                insert: Insert::Text("", "", "\r\n"),
            });
        }
        // Stable: insertions at one point keep the order they were made in.
        edits.sort_by_key(|e| e.at.start);
        let head_end = msg.head_end as usize;
        let terminated = msg.head_terminated();
        // The line end the last line lacks, owed at `head_end` (then the blank line).
        let mut owed_eol: &[u8] = if terminated || src[..head_end].ends_with(b"\n") {
            b""
        } else {
            b"\r\n"
        };
        let mut out = BytesMut::with_capacity(
            head_end + body.len() + 4 + edits.iter().map(insert_len).sum::<usize>(),
        );
        let mut cursor = 0usize;
        for edit in &edits {
            let start = edit.at.start as usize;
            if start < cursor {
                // Overlapping edits (e.g. a header both removed and rewritten): the
                // first one wins.
                continue;
            }
            out.put_slice(&src[cursor..start]);
            if start == head_end && edit.at.is_empty() {
                // An insertion after the last line goes on a line of its own.
                out.put_slice(std::mem::take(&mut owed_eol));
            }
            write_insert(&mut out, &edit.insert);
            cursor = edit.at.end as usize;
            if cursor == head_end
                && matches!(edit.insert, Insert::None)
                && msg.headers.iter().any(|h| h.line == edit.at)
            {
                // The last line is gone, and the line end it lacked with it.
                owed_eol = b"";
            }
        }
        out.put_slice(&src[cursor.min(head_end)..head_end]);
        if !terminated {
            out.put_slice(owed_eol);
            out.put_slice(b"\r\n");
        }
        out.put_slice(body);
        out.freeze()
    }
}

fn header_prefix(name: HeaderName) -> &'static str {
    // Only the headers a forwarder appends; others go through the builder.
    match name {
        HeaderName::Diversion => "Diversion: ",
        HeaderName::HistoryInfo => "History-Info: ",
        HeaderName::PAssertedIdentity => "P-Asserted-Identity: ",
        HeaderName::Privacy => "Privacy: ",
        HeaderName::Reason => "Reason: ",
        HeaderName::Contact => "Contact: ",
        HeaderName::Supported => "Supported: ",
        HeaderName::Allow => "Allow: ",
        HeaderName::UserAgent => "User-Agent: ",
        HeaderName::Server => "Server: ",
        HeaderName::Warning => "Warning: ",
        HeaderName::Route => "Route: ",
        HeaderName::RecordRoute => "Record-Route: ",
        _ => "X-Sihai: ",
    }
}

fn insert_len(edit: &Edit<'_>) -> usize {
    match &edit.insert {
        Insert::None => 0,
        Insert::Text(p, v, s) => p.len() + v.len() + s.len(),
        Insert::Number(_) => 10,
    }
}

fn write_insert(out: &mut BytesMut, insert: &Insert<'_>) {
    match insert {
        Insert::None => {}
        Insert::Text(p, v, s) => {
            out.put_slice(p.as_bytes());
            out.put_slice(v.as_bytes());
            out.put_slice(s.as_bytes());
        }
        Insert::Number(n) => {
            let mut digits = [0u8; 10];
            let mut i = digits.len();
            let mut n = *n;
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            out.put_slice(&digits[i..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:4001234567@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1 , SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n\
        Max-Forwards: 10\r\n\
        To: <sip:4001234567@127.0.0.1>\r\n\
        From: <sip:13800138000@carrier.example>;tag=abc\r\n\
        Call-ID: call-1\r\n\
        CSeq: 7 INVITE\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\n\
        v=0\nNOISE";

    fn invite() -> Message {
        Message::parse(Bytes::from_static(INVITE.as_bytes())).unwrap()
    }

    #[test]
    fn forward_a_request() {
        let msg = invite();
        let mut rw = Rewriter::new(&msg);
        rw.push_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnew");
        rw.set_request_uri("sip:13900000000@gw.example:5080")
            .unwrap();
        assert_eq!(rw.decrement_max_forwards(), Ok(9));
        rw.add_record_route("<sip:127.0.0.1;lr>");
        rw.append_header(HeaderName::Diversion, "<sip:4001234567@sihai>");
        let out = Message::parse(rw.finish()).unwrap();
        assert_eq!(out.request_uri(), Some("sip:13900000000@gw.example:5080"));
        let vias: Vec<_> = out.vias().collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[0], "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnew");
        assert_eq!(out.max_forwards(), Ok(Some(9)));
        assert_eq!(
            out.header(HeaderName::RecordRoute),
            Some("<sip:127.0.0.1;lr>")
        );
        assert_eq!(
            out.header(HeaderName::Diversion),
            Some("<sip:4001234567@sihai>")
        );
        assert_eq!(&out.body()[..], b"v=0\n");
        assert!(!out.as_bytes().ends_with(b"NOISE"));
        assert_eq!(crate::validate::check_request(&out), Ok(()));
    }

    #[test]
    fn pop_via_from_a_list_and_from_a_line() {
        let msg = invite();
        let out = Message::parse(Rewriter::new(&msg).pop_via().unwrap().finish()).unwrap();
        assert_eq!(
            out.vias().collect::<Vec<_>>(),
            vec!["SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2"]
        );
        let out2 = Message::parse(Rewriter::new(&out).pop_via().unwrap().finish()).unwrap();
        assert_eq!(out2.vias().count(), 0);
        assert_eq!(
            Rewriter::new(&out2).pop_via().err(),
            Some(RewriteError::NoVia)
        );
    }

    #[test]
    fn max_forwards_exhaustion_and_absence() {
        let zero = Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards: 0\r\n\r\n",
        ))
        .unwrap();
        assert_eq!(
            Rewriter::new(&zero).decrement_max_forwards(),
            Err(RewriteError::TooManyHops)
        );
        let none = Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n",
        ))
        .unwrap();
        let mut rw = Rewriter::new(&none);
        assert_eq!(rw.decrement_max_forwards(), Ok(70));
        let out = Message::parse(rw.finish()).unwrap();
        assert_eq!(out.max_forwards(), Ok(Some(70)));
    }

    #[test]
    fn header_section_without_its_final_crlfs() {
        // The last line lacks its CRLF and there is no blank line: added headers still get
        // lines of their own, and the result ends its header section.
        let msg = Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nMax-Forwards: 7",
        ))
        .unwrap();
        let mut rw = Rewriter::new(&msg);
        rw.push_via("SIP/2.0/UDP me;branch=z9hG4bK2");
        rw.append_header(HeaderName::Diversion, "<sip:d@e>");
        assert_eq!(rw.decrement_max_forwards(), Ok(6));
        let out = rw.finish();
        assert_eq!(
            &out[..],
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP me;branch=z9hG4bK2\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
              Max-Forwards: 6\r\nDiversion: <sip:d@e>\r\n\r\n"
        );
        // Only a start line, without its CRLF.
        let msg = Message::parse(Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0")).unwrap();
        let out = Rewriter::new(&msg)
            .push_via("SIP/2.0/UDP me;branch=z9hG4bK2")
            .finish();
        assert_eq!(
            &out[..],
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP me;branch=z9hG4bK2\r\n\r\n"
        );
        // The last line removed, with a new body appended where it was.
        let msg = Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nl: 0",
        ))
        .unwrap();
        let out = Rewriter::new(&msg).set_body("text/plain", b"hi").finish();
        assert_eq!(&out[..], b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi");
        // The last line complete, only the blank line missing.
        let msg = Message::parse(Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n",
        ))
        .unwrap();
        assert_eq!(
            &Rewriter::new(&msg).finish()[..],
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n"
        );
    }

    #[test]
    fn replace_body() {
        let msg = invite();
        let mut rw = Rewriter::new(&msg);
        rw.set_body("application/sdp", b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n");
        let out = Message::parse(rw.finish()).unwrap();
        assert_eq!(out.content_length(), crate::ContentLength::Declared(31));
        assert_eq!(out.count(HeaderName::ContentType), 1);
        assert_eq!(&out.body()[..], b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n");
    }
}
