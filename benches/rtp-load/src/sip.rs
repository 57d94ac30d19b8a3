//! Just enough SIP over UDP to set up, hold and end calls with sihai: read the start
//! line, a few headers and an SDP body, and write requests and responses. Everything
//! sihai sends is checked before use; nothing here panics on what comes off the wire.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result, anyhow, bail};

/// A SIP message split into its start line, header lines and body, borrowing the
/// datagram it was read from.
pub struct Message<'a> {
    start_line: &'a str,
    header_lines: Vec<&'a str>,
    pub body: &'a str,
}

impl<'a> Message<'a> {
    pub fn parse(datagram: &'a [u8]) -> Result<Message<'a>> {
        let text = std::str::from_utf8(datagram).context("SIP message is not UTF-8")?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| anyhow!("SIP message without an empty line after the headers"))?;
        let mut lines = head.split("\r\n");
        let start_line = lines
            .next()
            .filter(|line| !line.is_empty())
            .ok_or_else(|| anyhow!("SIP message without a start line"))?;
        Ok(Message {
            start_line,
            header_lines: lines.collect(),
            body,
        })
    }

    /// The status code of a response; `None` for a request.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start_line.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The method of a request; `None` for a response.
    pub fn method(&self) -> Option<&'a str> {
        if self.start_line.starts_with("SIP/2.0 ") {
            return None;
        }
        self.start_line.split(' ').next()
    }

    /// Every value of a header, by its full or compact name, in order.
    pub fn values(&self, name: &str, compact: Option<&str>) -> impl Iterator<Item = &'a str> {
        let name = name.to_owned();
        let compact = compact.map(str::to_owned);
        self.header_lines.iter().filter_map(move |line| {
            let (field, value) = line.split_once(':')?;
            let field = field.trim();
            let matches = field.eq_ignore_ascii_case(&name)
                || compact
                    .as_deref()
                    .is_some_and(|c| field.eq_ignore_ascii_case(c));
            matches.then(|| value.trim())
        })
    }

    pub fn header(&self, name: &str, compact: Option<&str>) -> Option<&'a str> {
        self.values(name, compact).next()
    }

    pub fn call_id(&self) -> Result<&'a str> {
        self.header("Call-ID", Some("i"))
            .ok_or_else(|| anyhow!("SIP message without Call-ID"))
    }

    /// The method named in CSeq ("INVITE" in "1 INVITE").
    pub fn cseq_method(&self) -> Result<&'a str> {
        self.header("CSeq", None)
            .and_then(|cseq| cseq.split_whitespace().nth(1))
            .ok_or_else(|| anyhow!("SIP message without a valid CSeq"))
    }

    /// The lines of the headers named, verbatim, for copying into a response.
    fn copy_lines(&self, out: &mut String, names: &[(&str, Option<&str>)]) {
        for line in &self.header_lines {
            let Some((field, _)) = line.split_once(':') else {
                continue;
            };
            let field = field.trim();
            if names.iter().any(|(name, compact)| {
                field.eq_ignore_ascii_case(name)
                    || compact.is_some_and(|c| field.eq_ignore_ascii_case(c))
            }) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
    }

    /// The URI inside the first Contact header (`<sip:...>` or bare).
    pub fn contact_uri(&self) -> Option<&'a str> {
        let value = self.header("Contact", Some("m"))?;
        match value.split_once('<') {
            Some((_, rest)) => rest.split_once('>').map(|(uri, _)| uri),
            None => value.split(';').next(),
        }
    }

    /// The user part of the From URI ("13800000042" in `<sip:13800000042@host>`).
    pub fn caller_user(&self) -> Option<&'a str> {
        let from = self.header("From", Some("f"))?;
        let after_scheme = from.split_once("sip:")?.1;
        after_scheme.split_once('@').map(|(user, _)| user)
    }
}

/// A response to `request`: its Via, From, Call-ID and CSeq copied, To given our
/// `to_tag` unless it already has one, and an optional SDP body.
pub fn response(
    request: &Message<'_>,
    status: u16,
    reason: &str,
    to_tag: &str,
    contact: Option<SocketAddr>,
    sdp: Option<&str>,
) -> Result<Vec<u8>> {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    request.copy_lines(
        &mut out,
        &[
            ("Via", Some("v")),
            ("From", Some("f")),
            ("Call-ID", Some("i")),
            ("CSeq", None),
        ],
    );
    let to = request
        .header("To", Some("t"))
        .ok_or_else(|| anyhow!("request without To"))?;
    if to.contains(";tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag={to_tag}\r\n"));
    }
    if let Some(contact) = contact {
        out.push_str(&format!("Contact: <sip:phone@{contact}>\r\n"));
    }
    match sdp {
        Some(body) => out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    Ok(out.into_bytes())
}

/// An SDP offer or answer of G.711 µ-law (payload type 0) and RFC 4733 telephone-events
/// (101) at `rtp`.
pub fn sdp(rtp: SocketAddr, session_id: u64) -> String {
    format!(
        "v=0\r\no=rtpload {session_id} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
        ip = rtp.ip(),
        port = rtp.port(),
    )
}

/// Where an SDP body wants its audio: the session's c= address and the m=audio port.
pub fn sdp_audio_target(sdp: &str) -> Result<SocketAddr> {
    let mut address: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(rest) = line
            .strip_prefix("c=IN IP4 ")
            .or(line.strip_prefix("c=IN IP6 "))
            && address.is_none()
        {
            let text = rest.split('/').next().unwrap_or(rest).trim();
            address = Some(
                text.parse()
                    .with_context(|| format!("SDP c= address {text:?}"))?,
            );
        } else if let Some(rest) = line.strip_prefix("m=audio ") {
            let text = rest.split_whitespace().next().unwrap_or_default();
            port = Some(
                text.parse()
                    .with_context(|| format!("SDP m=audio port {text:?}"))?,
            );
        }
    }
    match (address, port) {
        (Some(address), Some(port)) if port != 0 => Ok(SocketAddr::new(address, port)),
        (None, _) => bail!("SDP without c= line"),
        _ => bail!("SDP without an active m=audio line"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:13900000001@127.0.0.1:5080 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport\r\n\
        f: <sip:13800000042@127.0.0.1>;tag=x1\r\n\
        To: <sip:13900000001@127.0.0.1:5080>\r\n\
        Call-ID: leg-1@127.0.0.1\r\nCSeq: 1 INVITE\r\n\
        Contact: <sip:sihai@127.0.0.1:5060;transport=udp>\r\n\
        Content-Type: application/sdp\r\nContent-Length: 74\r\n\r\n\
        v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20002 RTP/AVP 0\r\n";

    #[test]
    fn reads_what_the_phone_needs_from_an_invite() {
        let message = Message::parse(INVITE).unwrap();
        assert_eq!(message.method(), Some("INVITE"));
        assert_eq!(message.status(), None);
        assert_eq!(message.caller_user(), Some("13800000042"));
        assert_eq!(message.call_id().unwrap(), "leg-1@127.0.0.1");
        assert_eq!(message.cseq_method().unwrap(), "INVITE");
        assert_eq!(
            message.contact_uri(),
            Some("sip:sihai@127.0.0.1:5060;transport=udp")
        );
        assert_eq!(
            sdp_audio_target(message.body).unwrap(),
            "127.0.0.1:20002".parse().unwrap()
        );
    }

    #[test]
    fn a_response_copies_the_dialog_headers_and_tags_to() {
        let request = Message::parse(INVITE).unwrap();
        let bytes = response(&request, 180, "Ringing", "p7", None, None).unwrap();
        let reply = Message::parse(&bytes).unwrap();
        assert_eq!(reply.status(), Some(180));
        assert_eq!(reply.caller_user(), Some("13800000042"));
        assert_eq!(
            reply.header("To", Some("t")),
            Some("<sip:13900000001@127.0.0.1:5080>;tag=p7")
        );
        assert!(reply.header("Via", Some("v")).is_some());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Message::parse(b"").is_err());
        assert!(Message::parse(b"\xff\xfe\r\n\r\n").is_err());
        assert!(sdp_audio_target("v=0\r\nm=audio 0 RTP/AVP 0\r\nc=IN IP4 127.0.0.1").is_err());
        assert!(sdp_audio_target("c=IN IP4 not-an-ip\r\nm=audio 4 RTP/AVP 0").is_err());
    }
}
