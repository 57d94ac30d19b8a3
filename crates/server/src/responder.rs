//! What sihai answers, as a pure function of the request.
//!
//! Until call routing exists (the routing issue replaces the INVITE branch), sihai is a
//! UAS that answers every request itself: OPTIONS with `200` (carriers use it as a
//! keep-alive), requests it cannot act on with the final response RFC 3261 prescribes
//! (`404`, `405`, `481`, `501`, `415`, `416`, `420`). Keeping the decision here, apart
//! from sockets and transactions, lets every answer be tested directly.

use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::{HeaderName, Message, Method, Scheme, Uri};

/// Methods sihai implements, advertised in `Allow`.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS";
/// Option tags sihai understands in `Require` (none yet).
const SUPPORTED_EXTENSIONS: &[&str] = &[];

/// The answer to one request: its final response.
pub struct Answer {
    pub status: u16,
    pub reason: &'static str,
    /// Extra headers for this response.
    pub headers: Vec<(HeaderName, String)>,
}

impl Answer {
    fn new(status: u16) -> Answer {
        Answer {
            status,
            reason: reason_phrase(status),
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: HeaderName, value: impl Into<String>) -> Answer {
        self.headers.push((name, value.into()));
        self
    }

    /// Builds the response message for `request`.
    pub fn build(&self, request: &Message, to_tag: &str, user_agent: &str) -> Message {
        let mut b = MessageBuilder::response_to(request, self.status, self.reason, Some(to_tag))
            .header(HeaderName::Server, user_agent);
        for (name, value) in &self.headers {
            b = b.header(*name, value);
        }
        b.build()
    }
}

/// Decides the answer to a valid request (see `sihai_sip::validate::check_request`).
/// `None` for ACK, which is never answered.
pub fn answer(request: &Message) -> Option<Answer> {
    let method = request.method()?;
    if method == Method::Ack {
        return None;
    }
    if let Some(early) = common_checks(request) {
        return Some(early);
    }
    let answer = match method {
        Method::Options => Answer::new(200)
            .with(HeaderName::Allow, ALLOW)
            .with(HeaderName::Accept, "application/sdp"),
        // INVITEs that pass the precheck are calls: the B2BUA answers them.
        Method::Invite => invite_precheck(request).unwrap_or_else(|| Answer::new(404)),
        // No dialogs exist yet, so anything that needs one has nothing to act on.
        Method::Bye | Method::Cancel | Method::Info | Method::Update | Method::Prack => {
            Answer::new(481)
        }
        Method::Register
        | Method::Subscribe
        | Method::Notify
        | Method::Publish
        | Method::Message
        | Method::Refer => Answer::new(405).with(HeaderName::Allow, ALLOW),
        Method::Extension(_) => Answer::new(501).with(HeaderName::Allow, ALLOW),
        Method::Ack => return None,
    };
    Some(answer)
}

/// What a node that is shutting down answers a new call or an OPTIONS probe: `503` with
/// `Retry-After`, so that a carrier tries another node (RFC 3263 §4.3) and a dispatcher
/// probing with OPTIONS marks this one down.
pub fn unavailable(retry_after_s: u32) -> Answer {
    Answer::new(503).with(HeaderName::RetryAfter, retry_after_s.to_string())
}

/// What an INVITE must offer before it can become a call: a session description we
/// understand (`415` otherwise) and acceptance of one in return (`406`). `None` when it
/// may proceed to routing.
pub fn invite_precheck(request: &Message) -> Option<Answer> {
    if let Some(early) = common_checks(request) {
        return Some(early);
    }
    let has_body = !request.body().is_empty();
    if has_body {
        let sdp = request
            .content_type()
            .is_some_and(|ct| media_type(ct).eq_ignore_ascii_case("application/sdp"));
        if !sdp {
            return Some(Answer::new(415).with(HeaderName::Accept, "application/sdp"));
        }
    }
    let accepts_sdp = request.get_all(HeaderName::Accept).next().is_none()
        || request.values(HeaderName::Accept).any(|a| {
            let t = media_type(a);
            t.eq_ignore_ascii_case("application/sdp")
                || t == "*/*"
                || t.eq_ignore_ascii_case("application/*")
        });
    if !accepts_sdp {
        return Some(Answer::new(406));
    }
    None
}

/// Checks every request meets first: a URI scheme we route, and no extension we lack.
fn common_checks(request: &Message) -> Option<Answer> {
    let method = request.method()?;
    let uri = request.request_uri().and_then(|u| Uri::parse(u).ok());
    if !uri.is_some_and(|u| matches!(u.scheme, Scheme::Sip | Scheme::Sips | Scheme::Tel)) {
        return Some(Answer::new(416));
    }
    let unsupported: Vec<&str> = request
        .values(HeaderName::Require)
        .filter(|tag| {
            !tag.is_empty()
                && !SUPPORTED_EXTENSIONS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(tag))
        })
        .collect();
    // CANCEL and ACK never carry Require semantics (RFC 3261 §8.2.2.3).
    if !unsupported.is_empty() && method != Method::Cancel {
        return Some(Answer::new(420).with(HeaderName::Unsupported, unsupported.join(", ")));
    }
    None
}

/// `type/subtype` without parameters.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn req(method: &str, uri: &str, extra: &str) -> Message {
        let text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\n\
             To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 {method}\r\n{extra}\r\n"
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    fn status(m: &Message) -> Option<u16> {
        answer(m).map(|a| a.status)
    }

    #[test]
    fn keepalive_options() {
        let r = req("OPTIONS", "sip:4001234567@127.0.0.1", "");
        let a = answer(&r).unwrap();
        assert_eq!(a.status, 200);
        let resp = a.build(&r, "tag1", "sihai");
        assert_eq!(resp.header(HeaderName::Allow), Some(ALLOW));
        assert_eq!(resp.to().unwrap().tag(), Some("tag1"));
        assert_eq!(resp.header(HeaderName::Server), Some("sihai"));
    }

    #[test]
    fn final_answers() {
        assert_eq!(
            status(&req("INVITE", "sip:4001234567@127.0.0.1", "")),
            Some(404)
        );
        assert_eq!(status(&req("BYE", "sip:a@b", "")), Some(481));
        assert_eq!(status(&req("REGISTER", "sip:b", "")), Some(405));
        assert_eq!(status(&req("FOO", "sip:b", "")), Some(501));
        assert_eq!(status(&req("ACK", "sip:b", "")), None);
        assert_eq!(
            status(&req("OPTIONS", "nobodyKnowsThisScheme:x", "")),
            Some(416)
        );
        let bext = answer(&req("OPTIONS", "sip:a@b", "Require: nothingSupported\r\n")).unwrap();
        assert_eq!(bext.status, 420);
        assert_eq!(
            bext.headers,
            vec![(HeaderName::Unsupported, "nothingSupported".to_string())]
        );
        assert_eq!(
            status(&req(
                "INVITE",
                "sip:a@b",
                "Content-Type: application/unknownformat\r\nContent-Length: 3\r\n\r\nabc"
            )),
            Some(415)
        );
        assert_eq!(
            status(&req(
                "INVITE",
                "sip:a@b",
                "Accept: text/nobodyKnowsThis\r\n"
            )),
            Some(406)
        );
        assert_eq!(
            status(&req(
                "INVITE",
                "sip:a@b",
                "Content-Type: application/SDP; charset=x\r\nContent-Length: 3\r\n\r\nv=0"
            )),
            Some(404)
        );
    }
}
