//! The Via header (RFC 3261 §20.42, §18.2.2; RFC 3581 `rport`): which transport and
//! address a request came through, the branch that names its transaction, and where a
//! response must go back to.

use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

use crate::net::{Peer, Transport};
use crate::scan::{self, find_param, is_token_char, trim_lws_start};
use crate::uri::split_hostport;

/// The RFC 3261 magic cookie that marks a branch as globally unique.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name and version, normally `SIP` and `2.0`.
    pub protocol: &'a str,
    pub version: &'a str,
    /// The transport token as written (`UDP`, `TCP`, `TLS`, `SCTP`, or an extension).
    pub transport: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    /// The parameters, starting at the first `;`, or empty.
    pub params: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ViaError {
    #[error("malformed sent-protocol in Via")]
    Protocol,
    #[error("malformed sent-by in Via")]
    SentBy,
    #[error("malformed Via parameter")]
    Param,
}

impl<'a> Via<'a> {
    /// Parses one Via value (a single element of the comma-separated list).
    pub fn parse(value: &'a str) -> Result<Via<'a>, ViaError> {
        let (protocol, rest) = take_token(value).ok_or(ViaError::Protocol)?;
        let rest = slash(rest).ok_or(ViaError::Protocol)?;
        let (version, rest) = take_token(rest).ok_or(ViaError::Protocol)?;
        let rest = slash(rest).ok_or(ViaError::Protocol)?;
        let (transport, rest) = take_token(rest).ok_or(ViaError::Protocol)?;
        let rest = trim_lws_start(rest);
        let end = rest
            .find(|c: char| c == ';' || (c.is_ascii() && scan::is_lws(c as u8)))
            .unwrap_or(rest.len());
        let (host, port) = split_sent_by(&rest[..end])?;
        let params = trim_lws_start(&rest[end..]);
        for param in scan::params(params) {
            param.map_err(|_| ViaError::Param)?;
        }
        Ok(Via {
            protocol,
            version,
            transport,
            host,
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&'a str> {
        find_param(self.params, "branch").flatten()
    }

    /// True when the branch carries the RFC 3261 magic cookie and something after it, so
    /// that it alone identifies the transaction (§17.2.3). Otherwise the RFC 2543
    /// matching rules apply.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    pub fn received(&self) -> Option<&'a str> {
        find_param(self.params, "received").flatten()
    }

    /// `None`: no rport; `Some(None)`: rport requested (empty); `Some(Some(p))`: filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        find_param(self.params, "rport").map(|v| {
            v.and_then(scan::parse_u32)
                .and_then(|p| u16::try_from(p).ok())
        })
    }

    pub fn maddr(&self) -> Option<&'a str> {
        find_param(self.params, "maddr").flatten()
    }

    /// The transport we run for this Via, if any.
    pub fn known_transport(&self) -> Option<Transport> {
        Transport::from_token(self.transport)
    }

    /// Where a response to a request carrying this top Via goes (RFC 3261 §18.2.2 with
    /// RFC 3581 symmetric response routing), given the transport and source address the
    /// request actually arrived from.
    ///
    /// Over a stream the answer is the connection the request came on. Over UDP the
    /// response goes to the source IP when the sender asked for `rport` or the sent-by
    /// differs from the source (the `received` case), to the source port when `rport`
    /// was asked for, and otherwise to the sent-by port (default 5060). `maddr` (multicast)
    /// is not followed: sihai answers trunks, never multicast groups.
    pub fn response_target(&self, source: Peer) -> Peer {
        if source.transport.is_reliable() {
            return source;
        }
        if self.rport().is_some() {
            return source;
        }
        let port = self.port.unwrap_or(5060);
        let sent_by_ip = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        let ip = match sent_by_ip {
            Some(ip) if ip == source.addr.ip() => ip,
            // A name, or an address that is not where the request came from: received= wins.
            _ => source.addr.ip(),
        };
        Peer::new(source.transport, SocketAddr::new(ip, port))
    }
}

fn split_sent_by(text: &str) -> Result<(&str, Option<u16>), ViaError> {
    split_hostport(text).map_err(|_| ViaError::SentBy)
}

fn take_token(s: &str) -> Option<(&str, &str)> {
    let s = trim_lws_start(s);
    let len = s.bytes().take_while(|&b| is_token_char(b)).count();
    (len > 0).then(|| (&s[..len], &s[len..]))
}

fn slash(s: &str) -> Option<&str> {
    trim_lws_start(s).strip_prefix('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str, transport: Transport) -> Peer {
        Peer::new(transport, s.parse().unwrap())
    }

    #[test]
    fn parses_spaced_protocol_and_params() {
        let v =
            Via::parse("SIP  /   2.0  /  UDP  192.0.2.2:5060 ; branch = z9hG4bKabc;rport").unwrap();
        assert_eq!((v.protocol, v.version, v.transport), ("SIP", "2.0", "UDP"));
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.rport(), Some(None));
    }

    #[test]
    fn rejects_bad_vias() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0 192.0.2.15").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("").is_err());
        assert!(
            !Via::parse("SIP/2.0/UDP h;branch=z9hG4bK")
                .unwrap()
                .has_rfc3261_branch()
        );
        // U+010A ends in the octet 0x0A: it is part of the (invalid) host, not white space.
        assert_eq!(
            Via::parse("SIP/2.0/UDP host\u{10a};branch=z9hG4bK1"),
            Err(ViaError::SentBy)
        );
    }

    #[test]
    fn response_routing() {
        let src = peer("192.0.2.9:40000", Transport::Udp);
        // rport: back to the exact source.
        assert_eq!(
            Via::parse("SIP/2.0/UDP 10.0.0.1:5060;rport")
                .unwrap()
                .response_target(src),
            src
        );
        // sent-by differs from source: source IP, sent-by port.
        assert_eq!(
            Via::parse("SIP/2.0/UDP 10.0.0.1:5070")
                .unwrap()
                .response_target(src),
            peer("192.0.2.9:5070", Transport::Udp)
        );
        // default port
        assert_eq!(
            Via::parse("SIP/2.0/UDP 192.0.2.9")
                .unwrap()
                .response_target(src),
            peer("192.0.2.9:5060", Transport::Udp)
        );
        // streams answer on the connection
        let tcp = peer("192.0.2.9:40001", Transport::Tcp);
        assert_eq!(
            Via::parse("SIP/2.0/TCP 192.0.2.9:5060")
                .unwrap()
                .response_target(tcp),
            tcp
        );
    }
}
