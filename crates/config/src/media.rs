//! `[media]`: the RTP relay's address and ports, how long a silent leg may last, and
//! where recordings and prompt files live.
//!
//! sihai relays every call's audio (to play ringback 彩铃 and voice menus 语音导航, and to
//! record calls 通话录音), so it needs an address phones and carriers can send RTP to, a
//! port range opened in the firewall, and two directories. The whole section is optional:
//! the address defaults to the first `[[sip.listen]]` address's IP, and directories
//! given by relative path are relative to the configuration file's own directory (not the
//! daemon's working directory), so a configuration and its prompts move together.

use std::net::IpAddr;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostics::Diagnostics;
use crate::duration::{self, RawDuration};

/// The top-level key of this section.
pub(crate) const SECTION: &str = "media";

/// The RTP ports used when `rtp_ports` is left out: 5,000 port pairs.
pub const DEFAULT_RTP_PORTS: RangeInclusive<u16> = 20_000..=29_999;
/// Ports below this are privileged or well known; RTP does not belong there.
const LOWEST_RTP_PORT: u16 = 1_024;
const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// Shorter would end calls over an ordinary network hiccup.
const MIN_MEDIA_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_MEDIA_TIMEOUT: Duration = Duration::from_secs(3_600);
const DEFAULT_RECORDINGS: &str = "recordings";
const DEFAULT_PROMPTS: &str = "prompts";

/// The `[media]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaConfig {
    /// Whether calls are anchored on sihai's RTP relay (`relay = true`): every call
    /// with an SDP offer gets relay ports, ringback as early media and its audio
    /// bridged through sihai. Off by default while menus and recording are completed.
    pub relay: bool,
    /// The IP the relay advertises in SDP (`c=`) and receives RTP on; never unspecified
    /// (`0.0.0.0`, `::`) or multicast. Defaults to the first `[[sip.listen]]` address's IP.
    pub address: IpAddr,
    /// The RTP ports handed to call legs, both ends included: the first is even and the
    /// range holds at least one RTP/RTCP pair, all within 1024..=65535. Default
    /// [`DEFAULT_RTP_PORTS`].
    pub rtp_ports: RangeInclusive<u16>,
    /// A leg that sends no RTP for this long ends the call; 1 s to 1 h, default 30 s.
    pub media_timeout: Duration,
    /// Where call recordings (WAV) are written, resolved against the configuration
    /// file's directory. Default `recordings` beside the file.
    pub recordings: PathBuf,
    /// The base directory of `[[prompt]]` files given by relative path, resolved against
    /// the configuration file's directory. Default `prompts` beside the file.
    pub prompts_dir: PathBuf,
}

impl MediaConfig {
    /// How many RTP/RTCP port pairs `rtp_ports` holds, i.e. how many call legs the relay
    /// can carry at once.
    pub fn port_pairs(&self) -> usize {
        port_pairs(&self.rtp_ports)
    }
}

/// `[media]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [media] table")]
pub(crate) struct RawMedia {
    relay: Option<Spanned<bool>>,
    address: Option<Spanned<String>>,
    rtp_ports: Option<Spanned<String>>,
    media_timeout: Option<Spanned<RawDuration>>,
    recordings: Option<Spanned<String>>,
    prompts: Option<Spanned<String>>,
}

/// What `[media]` defaults depend on outside the section.
pub(crate) struct Context<'c> {
    /// The IP of the first valid `[[sip.listen]]` address, if any.
    pub first_listen: Option<IpAddr>,
    /// Where that address is written, to point at when it cannot be the default.
    pub first_listen_span: Option<Range<usize>>,
    /// The directory relative paths are resolved against: the configuration file's.
    pub base_dir: &'c Path,
}

/// The validation pass for `[media]`; `raw` is `None` when the file has no `[media]`.
pub(crate) fn validate(
    raw: Option<Spanned<RawMedia>>,
    context: &Context<'_>,
    diagnostics: &mut Diagnostics,
) -> MediaConfig {
    let section_span = raw.as_ref().map(Spanned::span);
    let raw = raw.map(Spanned::into_inner);
    let relay = raw
        .as_ref()
        .and_then(|raw| raw.relay.as_ref())
        .is_some_and(|r| *r.get_ref());
    let address = match raw.as_ref().and_then(|raw| raw.address.as_ref()) {
        Some(written) => validate_address(written, diagnostics),
        // The address only matters when the relay runs.
        None if relay => default_address(context, section_span, diagnostics),
        None => context
            .first_listen
            .filter(|a| unusable_address(*a).is_none()),
    };
    let rtp_ports = match raw.as_ref().and_then(|raw| raw.rtp_ports.as_ref()) {
        Some(written) => match parse_port_range(written.get_ref()) {
            Ok(ports) => ports,
            Err(problem) => {
                diagnostics.report(Some(written.span()), "media.rtp_ports", problem);
                DEFAULT_RTP_PORTS
            }
        },
        None => DEFAULT_RTP_PORTS,
    };
    let media_timeout = duration::validated(
        raw.as_ref().and_then(|raw| raw.media_timeout.as_ref()),
        DEFAULT_MEDIA_TIMEOUT,
        MIN_MEDIA_TIMEOUT..=MAX_MEDIA_TIMEOUT,
        || "media.media_timeout".to_owned(),
        diagnostics,
    );
    let recordings = directory(
        raw.as_ref().and_then(|raw| raw.recordings.as_ref()),
        DEFAULT_RECORDINGS,
        "media.recordings",
        context.base_dir,
        diagnostics,
    );
    let prompts_dir = directory(
        raw.as_ref().and_then(|raw| raw.prompts.as_ref()),
        DEFAULT_PROMPTS,
        "media.prompts",
        context.base_dir,
        diagnostics,
    );
    MediaConfig {
        relay,
        address: address.unwrap_or(IpAddr::from([127, 0, 0, 1])),
        rtp_ports,
        media_timeout,
        recordings,
        prompts_dir,
    }
}

fn validate_address(written: &Spanned<String>, diagnostics: &mut Diagnostics) -> Option<IpAddr> {
    let text = written.get_ref();
    let problem = match text.parse::<IpAddr>() {
        Ok(address) => match unusable_address(address) {
            None => return Some(address),
            Some(problem) => format!("{address} {problem}"),
        },
        Err(_) => format!(
            "invalid IP address {text:?}: expected a literal IPv4 or IPv6 address without a \
             port, e.g. \"192.0.2.10\" or \"2001:db8::10\" (host names are not resolved)"
        ),
    };
    diagnostics.report(Some(written.span()), "media.address", problem);
    None
}

/// The first listen address's IP, unless it is one that cannot be advertised (a
/// listener on all interfaces), which is reported.
fn default_address(
    context: &Context<'_>,
    section_span: Option<Range<usize>>,
    diagnostics: &mut Diagnostics,
) -> Option<IpAddr> {
    // No valid listener: [sip] has already been reported.
    let listen = context.first_listen?;
    let Some(problem) = unusable_address(listen) else {
        return Some(listen);
    };
    diagnostics.report(
        section_span.or_else(|| context.first_listen_span.clone()),
        "media.address",
        format!(
            "the relay's address defaults to the first [[sip.listen]] address's IP, but \
             {listen} {problem}; add [media] with address = this machine's IP, \
             e.g. address = \"192.0.2.10\""
        ),
    );
    None
}

/// Why RTP cannot be received on `address`, if it cannot.
fn unusable_address(address: IpAddr) -> Option<&'static str> {
    if address.is_unspecified() {
        Some(
            "means \"every interface\" and cannot be advertised in SDP: phones and carriers \
             need the one address to send audio to",
        )
    } else if address.is_multicast() {
        Some("is a multicast address; the relay needs this machine's unicast address")
    } else {
        None
    }
}

/// Parses `"FIRST-LAST"` into an RTP port range, or says what is wrong with it.
pub(crate) fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let malformed = || {
        format!(
            "invalid port range {text:?}: expected \"FIRST-LAST\", two port numbers with \
             both ends included, e.g. \"20000-29999\""
        )
    };
    let (first, last) = text.split_once('-').ok_or_else(malformed)?;
    let port = |part: &str| {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        part.parse::<u16>()
            .map_err(|_| format!("port {part} in {text:?} is out of range; ports go up to 65535"))
    };
    let (first, last) = (port(first)?, port(last)?);
    if first > last {
        return Err(format!(
            "port range {text:?} is reversed; write the lower port first, e.g. \"{last}-{first}\""
        ));
    }
    if first < LOWEST_RTP_PORT {
        return Err(format!(
            "port range {text:?} starts below {LOWEST_RTP_PORT}; use unprivileged ports, \
             e.g. \"20000-29999\""
        ));
    }
    if first % 2 != 0 {
        return Err(format!(
            "port range {text:?} starts at an odd port; RTP uses even ports (each with the \
             odd RTCP port above it), so start at {}",
            first.saturating_sub(1)
        ));
    }
    let ports = first..=last;
    if port_pairs(&ports) == 0 {
        return Err(format!(
            "port range {text:?} holds one port; a call leg needs a pair (an even RTP port \
             and the odd RTCP port above it), e.g. \"{first}-{}\"",
            first.saturating_add(1)
        ));
    }
    Ok(ports)
}

/// Even RTP ports whose odd RTCP port is in the range too.
fn port_pairs(ports: &RangeInclusive<u16>) -> usize {
    let first = usize::from(*ports.start());
    let last = usize::from(*ports.end());
    if last < first {
        return 0;
    }
    let even_first = first + first % 2;
    if last <= even_first {
        return 0;
    }
    (last - even_first).div_ceil(2)
}

/// A directory setting resolved against the configuration file's directory.
fn directory(
    written: Option<&Spanned<String>>,
    default: &str,
    field: &str,
    base_dir: &Path,
    diagnostics: &mut Diagnostics,
) -> PathBuf {
    let Some(written) = written else {
        return base_dir.join(default);
    };
    let text = written.get_ref();
    if text.trim().is_empty() {
        diagnostics.report(
            Some(written.span()),
            field,
            format!("must not be empty; remove the setting to use the default {default:?}"),
        );
    } else if text.chars().any(char::is_control) {
        diagnostics.report(
            Some(written.span()),
            field,
            "must not contain control characters",
        );
    }
    base_dir.join(text)
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("20000-29999"), Ok(20_000..=29_999));
        assert_eq!(parse_port_range("1024-1025"), Ok(1_024..=1_025));
        assert_eq!(parse_port_range("65534-65535"), Ok(65_534..=65_535));
        assert_eq!(parse_port_range("30000-30002"), Ok(30_000..=30_002));
        for bad in [
            "",
            "20000",
            "20000-",
            "-29999",
            "20000 - 29999",
            "+20000-29999",
            "20000-29999-30000",
            "a-b",
            "20000..29999",
        ] {
            let problem = parse_port_range(bad).expect_err(bad);
            assert!(
                problem.starts_with("invalid port range"),
                "{bad}: {problem}"
            );
        }
        assert!(
            parse_port_range("20000-70000")
                .expect_err("too high")
                .contains("out of range")
        );
        assert!(
            parse_port_range("29999-20000")
                .expect_err("reversed")
                .contains("reversed")
        );
        assert!(
            parse_port_range("1000-2000")
                .expect_err("privileged")
                .contains("below 1024")
        );
        assert!(
            parse_port_range("20001-29999")
                .expect_err("odd")
                .contains("odd port")
        );
        assert!(
            parse_port_range("20000-20000")
                .expect_err("one port")
                .contains("holds one port")
        );
    }

    #[test]
    fn pairs_in_a_range() {
        assert_eq!(port_pairs(&(20_000..=29_999)), 5_000);
        assert_eq!(port_pairs(&(20_000..=20_001)), 1);
        assert_eq!(port_pairs(&(20_000..=20_002)), 1);
        assert_eq!(port_pairs(&(20_000..=20_000)), 0);
        assert_eq!(port_pairs(&(20_001..=20_002)), 0);
        assert_eq!(port_pairs(&(20_001..=20_003)), 1);
        assert_eq!(port_pairs(&(65_534..=65_535)), 1);
        assert_eq!(port_pairs(&(65_535..=65_535)), 0);
    }

    #[test]
    fn unusable_addresses() {
        for bad in ["0.0.0.0", "::", "224.0.0.1", "ff02::1"] {
            let address: IpAddr = bad.parse().expect("address");
            assert!(unusable_address(address).is_some(), "{bad}");
        }
        for good in ["127.0.0.1", "192.0.2.10", "::1", "2001:db8::10"] {
            let address: IpAddr = good.parse().expect("address");
            assert_eq!(unusable_address(address), None, "{good}");
        }
    }

    proptest::proptest! {
        /// Every valid range written as "FIRST-LAST" reads back as itself, and holds as
        /// many pairs as a count of its even ports with their odd neighbour says.
        #[test]
        fn valid_ranges_round_trip(first in (512u16..32_767).prop_map(|p| p * 2), extra in 1u16..2_000) {
            let last = first.saturating_add(extra);
            let ports = parse_port_range(&format!("{first}-{last}"));
            proptest::prop_assert_eq!(ports.clone(), Ok(first..=last));
            let counted = (first..=last).filter(|p| p % 2 == 0 && *p < last).count();
            proptest::prop_assert_eq!(port_pairs(&(first..=last)), counted);
        }

        /// Whatever the text, parsing never panics, and a range it accepts is one the
        /// relay can use.
        #[test]
        fn accepted_ranges_are_usable(text in "[0-9\\- a]{0,14}") {
            if let Ok(ports) = parse_port_range(&text) {
                proptest::prop_assert!(*ports.start() >= LOWEST_RTP_PORT);
                proptest::prop_assert!(ports.start() % 2 == 0);
                proptest::prop_assert!(port_pairs(&ports) >= 1);
            }
        }
    }
}
