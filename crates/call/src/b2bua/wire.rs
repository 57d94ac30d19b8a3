//! Small pieces of the messages we build: our Via and Contact per transport, random
//! tokens for tags and branches, a phone URI's address, and SDP bodies.

use std::net::{IpAddr, SocketAddr};

use sihai_sip::builder::MessageBuilder;
use sihai_sip::{Message, Peer, Scheme, Transport, Uri};

use super::{B2bua, B2buaConfig};

impl B2bua {
    pub(super) fn local_for(&self, transport: Transport) -> Option<SocketAddr> {
        local_for(&self.config, transport)
    }

    pub(super) fn via(&self, transport: Transport) -> String {
        let local = self
            .local_for(transport)
            .or(self.config.udp)
            .or(self.config.tcp);
        let host = local.map_or_else(|| "127.0.0.1:5060".to_string(), host_port);
        format!(
            "SIP/2.0/{} {host};branch=z9hG4bK{};rport",
            transport.as_str(),
            new_token()
        )
    }

    pub(super) fn contact_for(&self, transport: Transport) -> String {
        contact_value(self.local_for(transport), transport)
    }
}

pub(super) fn local_for(config: &B2buaConfig, transport: Transport) -> Option<SocketAddr> {
    match transport {
        Transport::Udp => config.udp,
        Transport::Tcp => config.tcp,
    }
}

pub(super) fn new_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub(super) fn host_port(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
    }
}

pub(super) fn contact_value(local: Option<SocketAddr>, transport: Transport) -> String {
    let host = local.map_or_else(|| "127.0.0.1:5060".to_string(), host_port);
    match transport {
        Transport::Udp => format!("<sip:sihai@{host}>"),
        Transport::Tcp => format!("<sip:sihai@{host};transport=tcp>"),
    }
}

/// The phone's address: IP literal host, port (default 5060), transport parameter.
pub(super) fn destination_of(uri: &str) -> Option<Peer> {
    let parsed = Uri::parse(uri).ok()?;
    if !matches!(parsed.scheme, Scheme::Sip) {
        return None;
    }
    let ip: IpAddr = parsed
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let transport = match parsed.param("transport").flatten() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        Some(t) if !t.eq_ignore_ascii_case("udp") => return None,
        _ => Transport::Udp,
    };
    Some(Peer::new(
        transport,
        SocketAddr::new(ip, parsed.port.unwrap_or(5060)),
    ))
}

/// The SDP body of `msg`, if it has one (`application/sdp`, valid UTF-8, not empty).
pub(super) fn sdp_body(msg: &Message) -> Option<String> {
    let is_sdp = msg.content_type().is_some_and(|ct| {
        ct.trim()
            .get(..15)
            .is_some_and(|media_type| media_type.eq_ignore_ascii_case("application/sdp"))
    });
    if !is_sdp {
        return None;
    }
    let body = String::from_utf8(msg.body().to_vec()).ok()?;
    (!body.trim().is_empty()).then_some(body)
}

/// Finishes `b` with the body (and Content-Type) of `source`, if it has one.
pub(super) fn with_body_of(b: MessageBuilder, source: &Message) -> Message {
    let body = source.body();
    match (body.is_empty(), source.content_type()) {
        (false, Some(ct)) => b.body(ct, &body),
        _ => b.build(),
    }
}
