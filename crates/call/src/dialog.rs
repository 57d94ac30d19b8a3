//! One side of a call as a SIP dialog (RFC 3261 §12): the identifiers that match its
//! in-dialog requests, and what building a request inside it needs (remote target, route
//! set, CSeq). A B2BUA has two dialogs per call, one per leg, with nothing in common on
//! the wire: separate Call-IDs, tags and CSeq spaces.

use sihai_sip::builder::MessageBuilder;
use sihai_sip::{HeaderName, Message, Method, NameAddr, Peer};

#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// Our From/To value (without tag) for requests we send.
    pub local_uri: String,
    pub remote_uri: String,
    /// Where requests go: the peer's Contact URI.
    pub remote_target: String,
    /// Route set, in the order requests carry it.
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    /// Where the peer is reached (the flow the dialog was set up on).
    pub peer: Peer,
}

impl Dialog {
    /// The dialog a UAS forms when it answers `invite` (§12.1.1): route set from
    /// Record-Route in order, remote target from Contact.
    pub fn as_uas(invite: &Message, local_tag: &str, peer: Peer) -> Option<Dialog> {
        let from = invite.from().ok()?;
        let to = invite.to().ok()?;
        Some(Dialog {
            call_id: invite.call_id().ok()?.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: from.tag().unwrap_or_default().to_string(),
            local_uri: address_without_tag(&to),
            remote_uri: address_without_tag(&from),
            remote_target: contact_uri(invite).unwrap_or_else(|| from.uri.to_string()),
            route_set: invite
                .values(HeaderName::RecordRoute)
                .map(str::to_string)
                .collect(),
            local_cseq: 1,
            peer,
        })
    }

    /// The dialog a UAC forms from the 2xx to its `invite` (§12.1.2): route set from the
    /// response's Record-Route in reverse.
    pub fn as_uac(invite: &Message, response: &Message, peer: Peer) -> Option<Dialog> {
        let from = invite.from().ok()?;
        let to = response.to().ok()?;
        let mut route_set: Vec<String> = response
            .values(HeaderName::RecordRoute)
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Some(Dialog {
            call_id: invite.call_id().ok()?.to_string(),
            local_tag: from.tag().unwrap_or_default().to_string(),
            remote_tag: to.tag().unwrap_or_default().to_string(),
            local_uri: address_without_tag(&from),
            remote_uri: address_without_tag(&to),
            remote_target: contact_uri(response)
                .unwrap_or_else(|| invite.request_uri().unwrap_or_default().to_string()),
            route_set,
            local_cseq: invite.cseq().map(|c| c.seq).unwrap_or(1),
            peer,
        })
    }

    /// A new request inside the dialog (§12.2.1.1) with a fresh CSeq, our Via and branch.
    pub fn request(&mut self, method: Method<'_>, via: &str, contact: &str) -> MessageBuilder {
        let cseq = if method == Method::Ack {
            self.local_cseq
        } else {
            self.local_cseq += 1;
            self.local_cseq
        };
        self.request_with_cseq(method, cseq, via, contact)
    }

    /// The ACK for a 2xx to the INVITE with `cseq` (§13.2.2.4): same CSeq number.
    pub fn ack(&self, cseq: u32, via: &str) -> Message {
        self.request_with_cseq(Method::Ack, cseq, via, "").build()
    }

    fn request_with_cseq(
        &self,
        method: Method<'_>,
        cseq: u32,
        via: &str,
        contact: &str,
    ) -> MessageBuilder {
        let cseq_text = format!("{cseq} {}", method.as_str());
        let mut b = MessageBuilder::request(method, &self.remote_target)
            .header(HeaderName::Via, via)
            .header(HeaderName::MaxForwards, "70")
            .header_parts(
                HeaderName::From,
                &[&self.local_uri, ";tag=", &self.local_tag],
            )
            .header_parts(
                HeaderName::To,
                &[&self.remote_uri, ";tag=", &self.remote_tag],
            )
            .header(HeaderName::CallId, &self.call_id)
            .header(HeaderName::CSeq, &cseq_text);
        for route in &self.route_set {
            b = b.header(HeaderName::Route, route);
        }
        if !contact.is_empty() && matches!(method, Method::Invite | Method::Update) {
            b = b.header(HeaderName::Contact, contact);
        }
        b
    }
}

/// `"Display" <uri>;params` without the tag parameter, as it goes back in From/To.
fn address_without_tag(addr: &NameAddr<'_>) -> String {
    let mut out = String::new();
    if let Some(display) = addr.display {
        out.push_str(display);
        out.push(' ');
    }
    out.push('<');
    out.push_str(addr.uri);
    out.push('>');
    for param in sihai_sip::scan::params(addr.params).map_while(Result::ok) {
        if param.name.eq_ignore_ascii_case("tag") {
            continue;
        }
        out.push(';');
        out.push_str(param.name);
        if let Some(v) = param.value {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

fn contact_uri(msg: &Message) -> Option<String> {
    let contact = msg.values(HeaderName::Contact).next()?;
    NameAddr::parse(contact).ok().map(|c| c.uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sihai_sip::Transport;

    fn peer() -> Peer {
        Peer::new(Transport::Udp, "127.0.0.1:5070".parse().unwrap())
    }

    #[test]
    fn uas_and_uac_dialogs() {
        let invite = Message::parse(Bytes::from_static(
            b"INVITE sip:4001234567@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
              Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\nFrom: \"A\" <sip:138@127.0.0.1>;tag=caller\r\n\
              To: <sip:4001234567@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 5 INVITE\r\nContact: <sip:138@127.0.0.1:5070>\r\n\r\n",
        ))
        .unwrap();
        let mut d = Dialog::as_uas(&invite, "us", peer()).unwrap();
        assert_eq!(d.remote_target, "sip:138@127.0.0.1:5070");
        assert_eq!(d.route_set, vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        let bye = d
            .request(
                Method::Bye,
                "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb",
                "",
            )
            .build();
        assert_eq!(bye.request_uri(), Some("sip:138@127.0.0.1:5070"));
        assert_eq!(bye.from().unwrap().tag(), Some("us"));
        assert_eq!(bye.to().unwrap().tag(), Some("caller"));
        assert_eq!(bye.to().unwrap().display, Some("\"A\""));
        assert_eq!(bye.cseq().unwrap().seq, 2);
        assert_eq!(
            bye.values(HeaderName::Route).collect::<Vec<_>>(),
            vec!["<sip:p1;lr>", "<sip:p2;lr>"]
        );
        assert_eq!(sihai_sip::validate::check_request(&bye), Ok(()));

        let ok = Message::parse(Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\n\
              From: \"A\" <sip:138@127.0.0.1>;tag=caller\r\nTo: <sip:4001234567@127.0.0.1>;tag=callee\r\nCall-ID: c1\r\n\
              CSeq: 5 INVITE\r\nContact: <sip:phone@127.0.0.1:5080>\r\n\r\n",
        ))
        .unwrap();
        let uac = Dialog::as_uac(&invite, &ok, peer()).unwrap();
        assert_eq!(uac.route_set, vec!["<sip:p2;lr>", "<sip:p1;lr>"]);
        assert_eq!(uac.remote_target, "sip:phone@127.0.0.1:5080");
        let ack = uac.ack(5, "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa");
        assert_eq!(ack.cseq().unwrap().seq, 5);
        assert_eq!(ack.cseq().unwrap().method, Method::Ack);
        assert_eq!(ack.to().unwrap().tag(), Some("callee"));
    }
}
