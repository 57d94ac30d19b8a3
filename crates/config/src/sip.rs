//! `[sip]`: where the daemon listens for SIP and how its transport and transaction
//! layers behave.
//!
//! Everything the SIP stack needs before the first packet arrives lives here: the
//! listening sockets (`[[sip.listen]]`), the RFC 3261 §17 timer bases that pace
//! retransmissions and timeouts (`[sip.timers]`), and the limits that keep one TCP peer
//! from exhausting the daemon (`[sip.tcp]`). Raw serde structs mirror the file; the
//! validation pass turns them into the public types, collecting every problem.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use sihai_sip::net::Transport;
use toml::Spanned;

use crate::diagnostics::Diagnostics;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "sip";

/// The `[sip]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// Sent in the `User-Agent` / `Server` header.
    pub user_agent: String,
    /// The sockets to listen on; never empty, no (transport, address) pair twice.
    pub listen: Vec<Listen>,
    pub timers: Timers,
    pub tcp: TcpSettings,
    /// Requests per second one source address may send (its burst is one second's
    /// worth); beyond that they are dropped.
    pub max_requests_per_source: u32,
    /// User-Agent fragments (lowercase) whose requests are dropped from any source, in
    /// addition to the built-in list of known scanners.
    pub scanner_user_agents: Vec<String>,
    /// After the first SIGTERM, how long calls in progress may go on while new calls
    /// are refused, before the node ends the rest itself; zero ends them at once.
    pub drain_timeout: Duration,
}

/// One listening socket: a `[[sip.listen]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Listen {
    pub transport: Transport,
    /// A literal IPv4 or IPv6 address and a non-zero port.
    pub address: SocketAddr,
    /// What requests from addresses that are no trunk get on this socket.
    pub untrusted: Untrusted,
}

/// The answer to a request from an address that is no trunk (and belongs to no call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Untrusted {
    /// One stateless `403` (`481` for an in-dialog request): no `100`, no transaction,
    /// no retransmission.
    #[default]
    Reject,
    /// Nothing at all.
    Drop,
}

/// RFC 3261 §17 timer bases; every other transaction timer is derived from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timers {
    /// Round-trip time estimate; first retransmission interval (RFC default 500 ms).
    pub t1: Duration,
    /// Retransmission interval cap for non-INVITE requests and INVITE responses
    /// (RFC default 4 s); at least `t1`.
    pub t2: Duration,
    /// How long a message may stay in the network (RFC default 5 s).
    pub t4: Duration,
}

impl Default for Timers {
    /// The RFC 3261 values.
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(DEFAULT_T1_MS),
            t2: Duration::from_millis(DEFAULT_T2_MS),
            t4: Duration::from_millis(DEFAULT_T4_MS),
        }
    }
}

/// Limits for SIP over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpSettings {
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Connections beyond this many (inbound and outbound together) are refused.
    pub max_connections: usize,
    /// Largest message (headers and body) the stream framer accepts.
    pub max_message_bytes: usize,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_S),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

const DEFAULT_T1_MS: u64 = 500;
const DEFAULT_T2_MS: u64 = 4_000;
const DEFAULT_T4_MS: u64 = 5_000;
/// Far above any sane timer, low enough that `64 * T1` and `now + timer` cannot overflow.
const MAX_TIMER_MS: u64 = 3_600_000;

/// Three requests a call (INVITE, ACK, BYE): about 1,600 calls/s from one address.
const DEFAULT_MAX_REQUESTS_PER_SOURCE: u32 = 5_000;
const MAX_REQUESTS_PER_SOURCE: u64 = 10_000_000;

/// Long enough for most calls in setup to be answered or given up, short enough for a
/// restart within systemd's default stop timeout (90 s).
const DEFAULT_DRAIN_TIMEOUT_S: u64 = 30;
/// One day: an operator may wait out the longest calls, never forever.
const MAX_DRAIN_TIMEOUT_S: u64 = 86_400;

const DEFAULT_IDLE_TIMEOUT_S: u64 = 300;
/// One day; keeps `now + idle_timeout` far from overflowing.
const MAX_IDLE_TIMEOUT_S: u64 = 86_400;
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
const DEFAULT_MAX_MESSAGE_BYTES: usize = 65_536;
/// A request line and the mandatory headers alone take a few hundred bytes.
const MIN_MESSAGE_BYTES: u64 = 1_024;
const MAX_MESSAGE_BYTES: u64 = 16 * 1024 * 1024;

fn default_user_agent() -> String {
    format!("sihai/{}", env!("CARGO_PKG_VERSION"))
}

/// `[sip]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [sip] table")]
pub(crate) struct RawSip {
    user_agent: Option<Spanned<String>>,
    listen: Option<Spanned<Vec<Spanned<RawListen>>>>,
    timers: Option<Spanned<RawTimers>>,
    tcp: Option<Spanned<RawTcp>>,
    max_requests_per_source: Option<Spanned<u64>>,
    scanner_user_agents: Option<Vec<Spanned<String>>>,
    drain_timeout_s: Option<Spanned<u64>>,
}

impl RawSip {
    /// Where the first `[[sip.listen]]` address is written, if anywhere.
    pub(crate) fn first_listen_address_span(&self) -> Option<Range<usize>> {
        let listen = self.listen.as_ref()?.get_ref();
        listen.first().map(|entry| entry.get_ref().address.span())
    }
}

/// One `[[sip.listen]]` entry as written. The address stays a string so that every bad
/// address is reported by validation, not just the first by serde.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[sip.listen]] table")]
struct RawListen {
    transport: Spanned<RawTransport>,
    address: Spanned<String>,
    untrusted: Option<RawUntrusted>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawUntrusted {
    Reject,
    Drop,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawTransport {
    Udp,
    Tcp,
}

impl From<RawTransport> for Transport {
    fn from(raw: RawTransport) -> Self {
        match raw {
            RawTransport::Udp => Transport::Udp,
            RawTransport::Tcp => Transport::Tcp,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [sip.timers] table")]
struct RawTimers {
    t1_ms: Option<Spanned<u64>>,
    t2_ms: Option<Spanned<u64>>,
    t4_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [sip.tcp] table")]
struct RawTcp {
    idle_timeout_s: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    max_message_bytes: Option<Spanned<u64>>,
}

/// A setting's value (or its default) and where it was written, if it was.
struct Setting<T> {
    value: T,
    span: Option<Range<usize>>,
}

impl<T: Copy> Setting<T> {
    fn from(raw: Option<&Spanned<T>>, default: T) -> Self {
        match raw {
            Some(raw) => Setting {
                value: *raw.get_ref(),
                span: Some(raw.span()),
            },
            None => Setting {
                value: default,
                span: None,
            },
        }
    }
}

/// The validation pass for `[sip]`. `raw` is `None` when the file has no `[sip]` table.
///
/// Reports every problem to `diagnostics`. The returned value is only meaningful when
/// nothing was reported: invalid entries are left out of it.
pub(crate) fn validate(raw: Option<Spanned<RawSip>>, diagnostics: &mut Diagnostics) -> SipConfig {
    let section_span = raw.as_ref().map(Spanned::span);
    let raw = raw.map(Spanned::into_inner);
    let (user_agent, listen, timers, tcp, max_requests, scanners, drain) = match raw {
        Some(raw) => (
            raw.user_agent,
            raw.listen,
            raw.timers,
            raw.tcp,
            raw.max_requests_per_source,
            raw.scanner_user_agents,
            raw.drain_timeout_s,
        ),
        None => (None, None, None, None, None, None, None),
    };
    SipConfig {
        user_agent: validate_user_agent(user_agent, diagnostics),
        listen: validate_listen(listen, section_span, diagnostics),
        timers: validate_timers(timers, diagnostics),
        tcp: validate_tcp(tcp, diagnostics),
        max_requests_per_source: validate_max_requests(max_requests, diagnostics),
        scanner_user_agents: validate_scanners(scanners.unwrap_or_default(), diagnostics),
        drain_timeout: crate::check::seconds(
            drain.as_ref(),
            DEFAULT_DRAIN_TIMEOUT_S,
            0..=MAX_DRAIN_TIMEOUT_S,
            || "sip.drain_timeout_s".to_owned(),
            diagnostics,
        ),
    }
}

fn validate_max_requests(raw: Option<Spanned<u64>>, diagnostics: &mut Diagnostics) -> u32 {
    let Some(raw) = raw else {
        return DEFAULT_MAX_REQUESTS_PER_SOURCE;
    };
    let value = *raw.get_ref();
    match u32::try_from(value) {
        Ok(limit) if (1..=MAX_REQUESTS_PER_SOURCE).contains(&value) => limit,
        _ => {
            diagnostics.report(
                Some(raw.span()),
                "sip.max_requests_per_source",
                format!("{value} is out of range; must be between 1 and {MAX_REQUESTS_PER_SOURCE}"),
            );
            DEFAULT_MAX_REQUESTS_PER_SOURCE
        }
    }
}

/// Each fragment is matched case-insensitively anywhere in the User-Agent header.
fn validate_scanners(raw: Vec<Spanned<String>>, diagnostics: &mut Diagnostics) -> Vec<String> {
    let mut fragments = Vec::with_capacity(raw.len());
    for (index, entry) in raw.into_iter().enumerate() {
        let span = entry.span();
        let text = entry.into_inner();
        let field = format!("sip.scanner_user_agents[{index}]");
        if text.trim().is_empty() {
            diagnostics.report(
                Some(span),
                field,
                "must not be empty (an empty fragment would match every User-Agent)",
            );
        } else if text.chars().any(char::is_control) {
            diagnostics.report(Some(span), field, "must not contain control characters");
        } else {
            fragments.push(text.trim().to_lowercase());
        }
    }
    fragments
}

fn validate_user_agent(raw: Option<Spanned<String>>, diagnostics: &mut Diagnostics) -> String {
    let Some(raw) = raw else {
        return default_user_agent();
    };
    let span = raw.span();
    let user_agent = raw.into_inner();
    if user_agent.trim().is_empty() {
        diagnostics.report(
            Some(span),
            "sip.user_agent",
            "must not be empty; remove the setting to send the default \"sihai/<version>\"",
        );
    } else if user_agent.chars().any(char::is_control) {
        diagnostics.report(
            Some(span),
            "sip.user_agent",
            "must not contain control characters (line breaks or tabs would corrupt the SIP header)",
        );
    }
    user_agent
}

fn validate_listen(
    raw: Option<Spanned<Vec<Spanned<RawListen>>>>,
    section_span: Option<Range<usize>>,
    diagnostics: &mut Diagnostics,
) -> Vec<Listen> {
    let (entries, span) = match raw {
        Some(raw) => {
            let span = raw.span();
            (raw.into_inner(), Some(span))
        }
        None => (Vec::new(), section_span),
    };
    if entries.is_empty() {
        diagnostics.report(
            span,
            "sip.listen",
            "at least one [[sip.listen]] entry is required, e.g. transport = \"udp\", address = \"0.0.0.0:5060\"",
        );
    }

    let mut listen = Vec::with_capacity(entries.len());
    let mut first_declared: HashMap<(Transport, SocketAddr), (usize, Range<usize>)> =
        HashMap::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let entry_span = entry.span();
        let entry = entry.into_inner();
        let field = format!("sip.listen[{index}]");
        let transport = Transport::from(*entry.transport.get_ref());
        let Some(address) = validate_address(&entry.address, &field, diagnostics) else {
            continue;
        };
        let untrusted = match entry.untrusted {
            None | Some(RawUntrusted::Reject) => Untrusted::Reject,
            Some(RawUntrusted::Drop) => Untrusted::Drop,
        };
        let candidate = Listen {
            transport,
            address,
            untrusted,
        };
        if let Some((first_index, first_span)) = first_declared.get(&(transport, address)) {
            diagnostics.report(
                Some(entry_span),
                field,
                format!(
                    "duplicate listen entry: {} {} is already declared by sip.listen[{}] at line {}",
                    transport.as_str().to_ascii_lowercase(),
                    address,
                    first_index,
                    diagnostics.source.line_of(first_span),
                ),
            );
            continue;
        }
        first_declared.insert((transport, address), (index, entry_span));
        listen.push(candidate);
    }
    listen
}

fn validate_address(
    raw: &Spanned<String>,
    entry_field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<SocketAddr> {
    let field = format!("{entry_field}.address");
    let text = raw.get_ref();
    let Ok(address) = text.parse::<SocketAddr>() else {
        diagnostics.report(
            Some(raw.span()),
            field,
            format!(
                "invalid socket address {text:?}: expected a literal IP address and port, \
                 e.g. \"0.0.0.0:5060\" or \"[::]:5060\" (host names are not resolved)"
            ),
        );
        return None;
    };
    if address.port() == 0 {
        diagnostics.report(
            Some(raw.span()),
            field,
            "port 0 is not allowed; give the port to listen on (5060 is the SIP default)",
        );
        return None;
    }
    Some(address)
}

fn validate_timers(raw: Option<Spanned<RawTimers>>, diagnostics: &mut Diagnostics) -> Timers {
    let raw = raw.map(Spanned::into_inner);
    let written = |timer: fn(&RawTimers) -> Option<&Spanned<u64>>| raw.as_ref().and_then(timer);
    let t1 = Setting::from(written(|raw| raw.t1_ms.as_ref()), DEFAULT_T1_MS);
    let t2 = Setting::from(written(|raw| raw.t2_ms.as_ref()), DEFAULT_T2_MS);
    let t4 = Setting::from(written(|raw| raw.t4_ms.as_ref()), DEFAULT_T4_MS);
    for (name, setting) in [("t1_ms", &t1), ("t2_ms", &t2), ("t4_ms", &t4)] {
        let field = format!("sip.timers.{name}");
        if setting.value == 0 {
            diagnostics.report(setting.span.clone(), field, "must be greater than 0");
        } else if setting.value > MAX_TIMER_MS {
            diagnostics.report(
                setting.span.clone(),
                field,
                format!(
                    "{} ms is too large; the maximum is {MAX_TIMER_MS} (one hour)",
                    setting.value
                ),
            );
        }
    }
    if t1.value != 0 && t2.value < t1.value {
        // Point at whichever of the two the operator wrote; t2 when both were.
        let (field, span) = match (&t2.span, &t1.span) {
            (Some(span), _) => ("sip.timers.t2_ms", Some(span.clone())),
            (None, span) => ("sip.timers.t1_ms", span.clone()),
        };
        diagnostics.report(
            span,
            field,
            format!(
                "t2_ms ({}{}) must not be less than t1_ms ({}{})",
                t2.value,
                if t2.span.is_none() {
                    ", the default"
                } else {
                    ""
                },
                t1.value,
                if t1.span.is_none() {
                    ", the default"
                } else {
                    ""
                },
            ),
        );
    }
    Timers {
        t1: Duration::from_millis(t1.value),
        t2: Duration::from_millis(t2.value),
        t4: Duration::from_millis(t4.value),
    }
}

fn validate_tcp(raw: Option<Spanned<RawTcp>>, diagnostics: &mut Diagnostics) -> TcpSettings {
    let defaults = TcpSettings::default();
    let Some(raw) = raw else {
        return defaults;
    };
    let raw = raw.into_inner();
    let mut settings = defaults;

    if let Some(idle) = &raw.idle_timeout_s {
        let seconds = *idle.get_ref();
        if seconds == 0 {
            diagnostics.report(
                Some(idle.span()),
                "sip.tcp.idle_timeout_s",
                "must be greater than 0 (idle connections must eventually be closed)",
            );
        } else if seconds > MAX_IDLE_TIMEOUT_S {
            diagnostics.report(
                Some(idle.span()),
                "sip.tcp.idle_timeout_s",
                format!("{seconds} s is too large; the maximum is {MAX_IDLE_TIMEOUT_S} (one day)"),
            );
        } else {
            settings.idle_timeout = Duration::from_secs(seconds);
        }
    }

    if let Some(max) = &raw.max_connections {
        match usize::try_from(*max.get_ref()) {
            Ok(0) => diagnostics.report(
                Some(max.span()),
                "sip.tcp.max_connections",
                "must be greater than 0",
            ),
            Ok(connections) => settings.max_connections = connections,
            Err(_) => diagnostics.report(
                Some(max.span()),
                "sip.tcp.max_connections",
                format!("{} is too large for this platform", max.get_ref()),
            ),
        }
    }

    if let Some(max) = &raw.max_message_bytes {
        let bytes = *max.get_ref();
        match usize::try_from(bytes) {
            Ok(limit) if (MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&bytes) => {
                settings.max_message_bytes = limit;
            }
            _ => diagnostics.report(
                Some(max.span()),
                "sip.tcp.max_message_bytes",
                format!(
                    "{bytes} is out of range; must be between {MIN_MESSAGE_BYTES} and \
                     {MAX_MESSAGE_BYTES} (16 MiB)"
                ),
            ),
        }
    }
    settings
}
