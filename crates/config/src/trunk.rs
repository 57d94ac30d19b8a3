//! `[[trunk]]`: the carriers allowed to send calls, and where calls to phones go out.
//!
//! Ingress is an address ACL: a request whose source address is in no trunk's `sources`
//! is refused. Each trunk also names the gateway that calls to phones given by number
//! (`phones = [{ number = "139..." }]`) are sent to, as a URI template.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "trunk";

/// The placeholder a gateway template must contain.
pub const NUMBER_PLACEHOLDER: &str = "{number}";

/// A number substituted into gateway templates to check that they make a valid URI.
const SAMPLE_NUMBER: &str = "13900000001";

/// One carrier trunk, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    /// Unique among trunks.
    pub name: String,
    /// Source addresses calls may come from; never empty.
    pub sources: Vec<IpNet>,
    /// URI template for calls to phones given by number: contains [`NUMBER_PLACEHOLDER`]
    /// and is a `sip:`/`sips:` URI once it is replaced by digits.
    pub gateway: String,
}

impl Trunk {
    /// Whether `source` may send calls over this trunk.
    pub fn allows(&self, source: IpAddr) -> bool {
        self.sources.iter().any(|net| net.contains(source))
    }

    /// The gateway URI for a call to `number` (digits).
    pub fn gateway_uri(&self, number: &str) -> String {
        self.gateway.replace(NUMBER_PLACEHOLDER, number)
    }
}

/// An IPv4 or IPv6 network: an address whose bits after `prefix_len` are zero.
/// A single host is a /32 (IPv4) or /128 (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a text or an (address, prefix) pair is not an [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    #[error(
        "not an IP address or CIDR network, e.g. \"192.0.2.1\", \"10.0.0.0/8\" or \"2001:db8::/32\""
    )]
    Syntax,
    #[error("prefix length {prefix_len} is too long; at most {max} for {family}")]
    PrefixTooLong {
        prefix_len: u8,
        max: u8,
        family: &'static str,
    },
    #[error("the address has bits set after the /{prefix_len} prefix; did you mean \"{network}\"?")]
    HostBitsSet { prefix_len: u8, network: IpNet },
}

impl IpNet {
    /// The network `addr/prefix_len`; `addr` must have no bits set after the prefix.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<IpNet, IpNetError> {
        let (max, family) = match addr {
            IpAddr::V4(_) => (32, "IPv4"),
            IpAddr::V6(_) => (128, "IPv6"),
        };
        if prefix_len > max {
            return Err(IpNetError::PrefixTooLong {
                prefix_len,
                max,
                family,
            });
        }
        let network = IpNet {
            addr: mask(addr, prefix_len),
            prefix_len,
        };
        if network.addr != addr {
            return Err(IpNetError::HostBitsSet {
                prefix_len,
                network,
            });
        }
        Ok(network)
    }

    /// The single address `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> IpNet {
        let prefix_len = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        IpNet { addr, prefix_len }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`,
    /// how a dual-stack socket reports an IPv4 peer) counts as the IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_matches(
                u32::from(net).into(),
                u32::from(ip).into(),
                self.prefix_len,
                32,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(u128::from(net), u128::from(ip), self.prefix_len, 128)
            }
            (IpAddr::V6(net), IpAddr::V4(ip)) => prefix_matches(
                u128::from(net),
                u128::from(ip.to_ipv6_mapped()),
                self.prefix_len,
                128,
            ),
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

fn prefix_matches(net: u128, ip: u128, prefix_len: u8, width: u8) -> bool {
    match width.checked_sub(prefix_len) {
        Some(host_bits) if host_bits < width => (net ^ ip) >> host_bits == 0,
        // A /0 network contains everything (and a shift by the full width would overflow).
        _ => true,
    }
}

fn mask(addr: IpAddr, prefix_len: u8) -> IpAddr {
    let keep = |width: u8| -> u128 {
        match width.checked_sub(prefix_len) {
            Some(host_bits) if host_bits < width => !((1u128 << host_bits) - 1),
            Some(_) => 0,
            None => u128::MAX,
        }
    };
    match addr {
        IpAddr::V4(v4) => {
            let bits = u128::from(u32::from(v4)) & keep(32);
            IpAddr::V4(Ipv4Addr::from(u32::try_from(bits).unwrap_or_default()))
        }
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep(128))),
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    /// `"192.0.2.1"`, `"10.0.0.0/8"`, `"::1"`, `"2001:db8::/32"`.
    fn from_str(text: &str) -> Result<IpNet, IpNetError> {
        match text.split_once('/') {
            None => text
                .parse::<IpAddr>()
                .map(IpNet::host)
                .map_err(|_| IpNetError::Syntax),
            Some((addr, prefix_len)) => {
                let addr = addr.parse::<IpAddr>().map_err(|_| IpNetError::Syntax)?;
                let digits_only = !prefix_len.is_empty()
                    && prefix_len.len() <= 3
                    && prefix_len.bytes().all(|b| b.is_ascii_digit());
                if !digits_only {
                    return Err(IpNetError::Syntax);
                }
                let prefix_len = prefix_len.parse::<u8>().map_err(|_| IpNetError::Syntax)?;
                IpNet::new(addr, prefix_len)
            }
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One `[[trunk]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[trunk]] table")]
pub(crate) struct RawTrunk {
    name: Spanned<String>,
    sources: Spanned<Vec<Spanned<String>>>,
    gateway: Spanned<String>,
}

/// The validation pass for `[[trunk]]`.
pub(crate) fn validate(raw: ArraySection<RawTrunk>, diagnostics: &mut Diagnostics) -> Vec<Trunk> {
    let mut names = Catalog::new(SECTION, "name", &raw);
    let mut trunks = Vec::with_capacity(raw.entries.len());
    for (index, entry) in raw.entries {
        let field = entry_field(SECTION, index);
        let entry = entry.into_inner();
        check::name(&entry.name, || format!("{field}.name"), diagnostics);
        names.declare(
            entry.name.get_ref(),
            entry.name.span(),
            field.clone(),
            None,
            diagnostics,
        );
        let sources = validate_sources(&entry.sources, &field, diagnostics);
        validate_gateway(&entry.gateway, &field, diagnostics);
        trunks.push(Trunk {
            name: entry.name.into_inner(),
            sources,
            gateway: entry.gateway.into_inner(),
        });
    }
    trunks
}

fn validate_sources(
    raw: &Spanned<Vec<Spanned<String>>>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<IpNet> {
    if raw.get_ref().is_empty() {
        diagnostics.report(
            Some(raw.span()),
            format!("{field}.sources"),
            "at least one source address is required, e.g. [\"192.0.2.1\"] or [\"10.0.0.0/8\"]",
        );
    }
    let mut sources = Vec::with_capacity(raw.get_ref().len());
    for (index, source) in raw.get_ref().iter().enumerate() {
        match source.get_ref().parse::<IpNet>() {
            Ok(net) => sources.push(net),
            Err(error) => diagnostics.report(
                Some(source.span()),
                format!("{field}.sources[{index}]"),
                format!("invalid source {:?}: {error}", source.get_ref()),
            ),
        }
    }
    sources
}

fn validate_gateway(raw: &Spanned<String>, field: &str, diagnostics: &mut Diagnostics) {
    let template = raw.get_ref();
    let field = format!("{field}.gateway");
    if !template.contains(NUMBER_PLACEHOLDER) {
        diagnostics.report(
            Some(raw.span()),
            field,
            format!(
                "gateway {template:?} must contain {NUMBER_PLACEHOLDER}, where the phone number \
                 goes, e.g. \"sip:{NUMBER_PLACEHOLDER}@192.0.2.10:5060\""
            ),
        );
        return;
    }
    let uri = template.replace(NUMBER_PLACEHOLDER, SAMPLE_NUMBER);
    if let Some(problem) = check::sip_uri_problem(&uri) {
        diagnostics.report(
            Some(raw.span()),
            field,
            format!("gateway {template:?} does not make a valid SIP URI ({uri:?}): {problem}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn hosts_and_networks_parse() {
        assert_eq!(net("127.0.0.1"), IpNet::host(ip("127.0.0.1")));
        assert_eq!(net("127.0.0.1").prefix_len(), 32);
        assert_eq!(net("::1").prefix_len(), 128);
        assert_eq!(net("10.0.0.0/8").addr(), ip("10.0.0.0"));
        assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("0.0.0.0/0").prefix_len(), 0);
    }

    #[test]
    fn malformed_networks_are_rejected() {
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "10.0.0/8",
            "host",
            "10.0.0.0/8/8",
            "10.0.0.0/0008",
        ] {
            assert_eq!(bad.parse::<IpNet>(), Err(IpNetError::Syntax), "{bad:?}");
        }
        assert!(matches!(
            "10.0.0.0/33".parse::<IpNet>(),
            Err(IpNetError::PrefixTooLong { max: 32, .. })
        ));
        assert!(matches!(
            "::/129".parse::<IpNet>(),
            Err(IpNetError::PrefixTooLong { max: 128, .. })
        ));
        assert_eq!(
            "10.1.2.3/8".parse::<IpNet>(),
            Err(IpNetError::HostBitsSet {
                prefix_len: 8,
                network: net("10.0.0.0/8")
            })
        );
    }

    #[test]
    fn containment() {
        let ten = net("10.0.0.0/8");
        assert!(ten.contains(ip("10.255.1.2")));
        assert!(!ten.contains(ip("11.0.0.0")));
        assert!(!ten.contains(ip("::1")));
        assert!(
            ten.contains(ip("::ffff:10.1.1.1")),
            "IPv4-mapped peers count as IPv4"
        );
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        assert!(
            net("::/0").contains(ip("192.0.2.1")),
            "an IPv4 peer is ::ffff:a.b.c.d"
        );
        let host = net("127.0.0.1");
        assert!(host.contains(ip("127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));
        let six = net("2001:db8::/32");
        assert!(six.contains(ip("2001:db8:ffff::1")));
        assert!(!six.contains(ip("2001:db9::1")));
        assert!(net("::1").contains(ip("::1")));
    }

    #[test]
    fn gateway_substitution() {
        let trunk = Trunk {
            name: "t".into(),
            sources: vec![net("127.0.0.1")],
            gateway: "sip:{number}@127.0.0.1:5080".into(),
        };
        assert_eq!(
            trunk.gateway_uri("13900000001"),
            "sip:13900000001@127.0.0.1:5080"
        );
        assert!(trunk.allows(ip("127.0.0.1")));
        assert!(!trunk.allows(ip("127.0.0.2")));
    }
}
