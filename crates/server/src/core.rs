//! The endpoint's protocol core: bytes in, bytes out, no sockets and no clock of its own.
//!
//! Every received datagram or stream frame is parsed and screened here before it may
//! cost anything (see [`screen`](crate::screen)): a request over its source's flood
//! limit or from a known scanner is dropped, and a request from an address that is no
//! trunk and belongs to no call or transaction gets one stateless `403` (`481` in a
//! dialog) or nothing, as its listener says, never a transaction. A request that
//! fails validation is answered statelessly with the fault's status and a `Warning`
//! naming it (a transaction needs a sound Via and CSeq to exist at all); everything else
//! goes through the RFC 3261 transaction layer, which absorbs retransmissions, and the
//! [`responder`](crate::responder) decides what to answer. The async loop in `lib.rs`
//! only moves bytes and instants in and out, so this whole path is tested without I/O.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use jiff::Timestamp;
use sihai_call::b2bua::{BillingOp, CrmAnswer, CrmLookupRequest};
use sihai_call::{B2bua, B2buaConfig};
use sihai_config::Untrusted;
use sihai_routing::RoutingTable;
use sihai_sip::Via;
use sihai_sip::builder::MessageBuilder;
use sihai_sip::validate::{check_request, check_response, is_answerable};
use sihai_sip::{HeaderName, Message, Method, Peer};
use sihai_store::{Cdr, NewAlert, ReservationOutcome};
use sihai_transaction::{Event, TransactionKey, TransactionLayer, Transmit};
use tracing::{debug, info, trace};

use crate::responder;
use crate::screen::{Admission, FloodLimiter, ScreenSettings};
use crate::stats::{Stats, StatsSnapshot};

mod shutdown;
use shutdown::{DrainProgress, Lifecycle};
pub use shutdown::{HANG_UP_GRACE, RETRY_AFTER_S};

pub struct Core {
    transactions: TransactionLayer,
    calls: B2bua,
    /// The routing snapshot new calls are routed with; swapped whole on reload.
    routing: Arc<ArcSwap<RoutingTable>>,
    /// Stateless answers to requests too broken for a transaction.
    outbox: VecDeque<Transmit>,
    user_agent: String,
    stats: Arc<Stats>,
    screen: ScreenSettings,
    limiter: FloodLimiter,
    screen_summary: ScreenSummary,
    /// Shutting down: new calls and OPTIONS are refused (`503`). The one thing the
    /// drain costs a request that is not a call's: this check.
    draining: bool,
    lifecycle: Lifecycle,
    drain_progress: DrainProgress,
}

/// At most one info line per [`SCREEN_SUMMARY_INTERVAL`] about what the screen turned
/// away (each request is logged at trace level only: a flood must not flood the log).
#[derive(Debug, Default)]
struct ScreenSummary {
    next: Option<Instant>,
    logged: StatsSnapshot,
}

const SCREEN_SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

/// What the screen decided about a request.
enum Verdict {
    /// On to validation and the transaction layer.
    Admit,
    /// Handled here (dropped, or answered statelessly).
    Stop,
}

impl Core {
    pub fn new(
        config: B2buaConfig,
        routing: Arc<ArcSwap<RoutingTable>>,
        stats: Arc<Stats>,
    ) -> Core {
        let regions = sihai_region::RegionTable::embedded();
        let zone = sihai_routing::schedule::china_time_zone();
        let mut transactions = TransactionLayer::new(config.timers);
        transactions.set_counters(stats.sip.clone());
        Core {
            transactions,
            user_agent: config.user_agent.clone(),
            calls: B2bua::new(config, regions, zone),
            routing,
            outbox: VecDeque::new(),
            stats,
            limiter: FloodLimiter::new(ScreenSettings::default().max_requests_per_source),
            screen: ScreenSettings::default(),
            screen_summary: ScreenSummary::default(),
            draining: false,
            lifecycle: Lifecycle::Serving,
            drain_progress: DrainProgress::default(),
        }
    }

    /// The listeners' untrusted policies, the flood limit and the scanner list (at
    /// start and on reload; the limiter keeps what it counted).
    pub fn set_screening(&mut self, settings: ScreenSettings) {
        self.limiter.set_rate(settings.max_requests_per_source);
        self.screen = settings;
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.calls.active_calls()
    }

    /// Entries in the B2BUA's call timer heap, for tests and metrics.
    pub fn pending_call_timers(&self) -> usize {
        self.calls.pending_call_timers()
    }

    /// A finished call's record and its missed-call alert, for the store.
    pub fn poll_record(&mut self) -> Option<(Cdr, Option<NewAlert>)> {
        let record = self.calls.poll_record()?;
        self.stats.call_recorded(&record.0);
        Some(record)
    }

    /// The next thing a billed call asks of the store (a reservation, an answer).
    pub fn poll_billing(&mut self) -> Option<BillingOp> {
        self.calls.poll_billing()
    }

    /// The store's answer to a reservation request of call `call_id`.
    pub fn on_reservation(
        &mut self,
        now: Instant,
        wall: Timestamp,
        call_id: &str,
        outcome: ReservationOutcome,
    ) {
        self.calls
            .on_reservation(&mut self.transactions, call_id, outcome, now, wall);
    }

    /// The next caller lookup a call asks of its enterprise's CRM (来电弹屏).
    pub fn poll_crm_lookup(&mut self) -> Option<CrmLookupRequest> {
        self.calls.poll_crm_lookup()
    }

    /// The CRM's answer to lookup `lookup`: a call waiting for it rings now.
    pub fn on_crm_answer(&mut self, now: Instant, wall: Timestamp, lookup: u64, answer: CrmAnswer) {
        self.calls
            .on_crm_answer(&mut self.transactions, lookup, answer, now, wall);
    }

    /// Talk time one reservation chunk covers (`[billing] reservation_minutes`), for
    /// calls admitted from now on.
    pub fn set_reservation_seconds(&mut self, seconds: u32) {
        self.calls.set_reservation_seconds(seconds);
    }

    /// A message that arrived on no particular listener: untrusted requests get the
    /// default policy (`reject`).
    pub fn handle_received(&mut self, now: Instant, wall: Timestamp, data: Bytes, source: Peer) {
        self.handle_received_on(now, wall, data, source, None);
    }

    /// A message that arrived on the socket (UDP) or connection (TCP) whose local
    /// address is `local`, which picks the listener's policy for untrusted requests.
    pub fn handle_received_on(
        &mut self,
        now: Instant,
        wall: Timestamp,
        data: Bytes,
        source: Peer,
        local: Option<SocketAddr>,
    ) {
        Stats::bump(&self.stats.received);
        // A request over twice its source's limit is dropped before it costs a parse.
        // Responses are not limited: phones answer from addresses of their own.
        let admission = if data.starts_with(b"SIP/") {
            Admission::Within
        } else {
            self.limiter.admit(now, source.addr.ip())
        };
        if admission == Admission::Shed {
            Stats::bump(&self.stats.flood_limited);
            trace!(%source, "shedding request over twice its source's flood limit");
            self.log_screen_summary(now);
            return;
        }
        let msg = match Message::parse(data) {
            Ok(msg) => msg,
            Err(err) => {
                Stats::bump(&self.stats.unparsable);
                debug!(%source, %err, "dropping unparsable message");
                return;
            }
        };
        if let Some(method) = msg.method() {
            self.stats.sip.request_received(method.as_str());
        }
        if msg.is_request() {
            if let Verdict::Stop = self.screen(&msg, source, local, admission) {
                self.log_screen_summary(now);
                return;
            }
            if let Err(fault) = check_request(&msg) {
                Stats::bump(&self.stats.rejected_requests);
                debug!(%source, %fault, "rejecting malformed request");
                self.reject_statelessly(&msg, source, fault.status, &fault.reason);
                return;
            }
            Stats::bump(&self.stats.requests);
        } else if let Err(fault) = check_response(&msg) {
            Stats::bump(&self.stats.dropped_responses);
            debug!(%source, %fault, "dropping malformed response");
            return;
        }
        self.transactions.handle_received(now, msg, source);
        self.drain_events(now, wall);
    }

    pub fn handle_timeout(&mut self, now: Instant, wall: Timestamp) {
        self.transactions.handle_timeout(now);
        self.drain_events(now, wall);
        self.calls.handle_timeout(&mut self.transactions, now, wall);
        self.drain_events(now, wall);
        if self.draining {
            // The drain time may be over.
            self.advance_shutdown(now, wall);
        }
    }

    /// The transport could not deliver to `destination` (§17.1.4, §17.2.4): its
    /// transactions fail now instead of waiting for their timers.
    pub fn handle_transport_error(&mut self, now: Instant, wall: Timestamp, destination: Peer) {
        self.transactions.handle_transport_error(now, destination);
        self.drain_events(now, wall);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox
            .pop_front()
            .or_else(|| self.calls.poll_transmit())
            .or_else(|| self.transactions.poll_transmit())
    }

    /// Turns the RTP relay on: calls with an SDP offer are anchored on its ports.
    pub fn enable_media(
        &mut self,
        settings: sihai_call::media::MediaSettings,
    ) -> Result<(), sihai_media::PoolError> {
        self.calls.enable_media(settings)
    }

    /// What a reload may change in the core: the product token in `User-Agent` and
    /// `Server`, and the media timeout of calls set up from now on.
    pub fn reconfigure(&mut self, user_agent: &str, media_timeout: std::time::Duration) {
        if self.user_agent != user_agent {
            self.user_agent = user_agent.to_owned();
        }
        self.calls.reconfigure(user_agent, media_timeout);
    }

    /// The prompts calls may play, by `[[prompt]]` name.
    pub fn set_prompts(
        &mut self,
        prompts: Arc<std::collections::HashMap<String, sihai_media::Prompt>>,
    ) {
        self.calls.set_prompts(prompts);
    }

    /// A datagram that arrived on relay port `port`.
    pub fn handle_media(
        &mut self,
        now: Instant,
        wall: Timestamp,
        port: u16,
        source: std::net::SocketAddr,
        packet: &[u8],
    ) {
        self.calls
            .handle_media(&mut self.transactions, port, source, packet, now, wall);
        self.drain_events(now, wall);
    }

    pub fn poll_media_transmit(&mut self) -> Option<sihai_relay::MediaTransmit> {
        self.calls.poll_media_transmit()
    }

    /// Gives a sent RTP packet's buffer back for reuse.
    pub fn recycle_media(&mut self, from_port: u16, buffer: Vec<u8>) {
        self.calls.recycle_media(from_port, buffer);
    }

    pub fn poll_recording(&mut self) -> Option<sihai_call::media::RecordingOutput> {
        self.calls.poll_recording()
    }

    pub fn poll_port_event(&mut self) -> Option<sihai_call::media::PortEvent> {
        self.calls.poll_port_event()
    }

    pub fn media_ports_available(&self) -> Option<usize> {
        self.calls.media_ports_available()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.transactions.poll_timeout(),
            self.calls.poll_timeout(),
            self.lifecycle.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Live transactions, for tests and metrics.
    pub fn transactions(&self) -> usize {
        self.transactions.len()
    }

    /// Publishes the gauges the metrics endpoint reads: a few relaxed stores, once a
    /// turn of the signalling loop.
    pub fn publish_gauges(&self) {
        let set = |gauge: &std::sync::atomic::AtomicU64, value: usize| {
            gauge.store(
                u64::try_from(value).unwrap_or(u64::MAX),
                std::sync::atomic::Ordering::Relaxed,
            );
        };
        self.stats.set_calls_in_progress(self.calls.active_calls());
        set(&self.stats.calls_talking, self.calls.calls_talking());
        set(&self.stats.transactions, self.transactions.len());
        set(&self.stats.draining, usize::from(self.is_draining()));
        set(
            &self.stats.reservations_open,
            self.calls.calls_holding_reservations(),
        );
        let (free, all) = self.calls.media_ports().unwrap_or((0, 0));
        set(&self.stats.relay_ports_free, free);
        set(&self.stats.relay_ports, all);
        let crm = self.calls.crm_counts();
        for (gauge, count) in self.stats.crm_lookups.iter().zip([
            crm.cached,
            crm.known,
            crm.unknown,
            crm.failed,
            crm.timed_out,
        ]) {
            gauge.store(count, std::sync::atomic::Ordering::Relaxed);
        }
        let (relayed, dropped) = self.calls.media_packets().unwrap_or((0, 0));
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        self.stats.relay_packets.store(relayed, relaxed);
        self.stats.relay_dropped.store(dropped, relaxed);
    }

    /// The checks before a request may cost a transaction, cheapest first (the flood
    /// limit was counted before parsing, one map lookup): the User-Agent against the
    /// scanners, a scan of the trunks' networks, and only for what is over the limit or
    /// not from a trunk, a look at the dialogs and transactions.
    fn screen(
        &mut self,
        request: &Message,
        source: Peer,
        local: Option<SocketAddr>,
        admission: Admission,
    ) -> Verdict {
        let ip = source.addr.ip();
        let has_to_tag = || request.to().is_ok_and(|to| to.tag().is_some());
        // What belongs to a transaction or a call already costs nothing new: spared by
        // the flood limit, and admitted from any address (a phone's BYE, its re-INVITE).
        let known = |core: &Core| {
            core.transactions.matches_server_transaction(request)
                || (has_to_tag() && core.calls.owns_dialog(request))
        };
        if admission == Admission::Over && !known(self) {
            Stats::bump(&self.stats.flood_limited);
            trace!(%source, "dropping request over its source's flood limit");
            return Verdict::Stop;
        }
        if let Some(user_agent) = request.header(HeaderName::UserAgent)
            && self.screen.is_scanner(user_agent)
        {
            Stats::bump(&self.stats.scanners_dropped);
            trace!(%source, user_agent, "dropping a scanner's request");
            return Verdict::Stop;
        }
        if self.routing.load().trunk_for(ip).is_some() || known(self) {
            return Verdict::Admit;
        }
        let policy = self.screen.untrusted_policy(source.transport, local);
        if policy == Untrusted::Drop || request.method() == Some(Method::Ack) {
            Stats::bump(&self.stats.untrusted_dropped);
            trace!(%source, "dropping request from an address that is no trunk");
            return Verdict::Stop;
        }
        Stats::bump(&self.stats.untrusted_rejected);
        trace!(%source, "refusing request from an address that is no trunk");
        if has_to_tag() {
            self.reject_statelessly(request, source, 481, "Call/Transaction Does Not Exist");
        } else {
            self.reject_statelessly(request, source, 403, "Forbidden");
        }
        Verdict::Stop
    }

    fn log_screen_summary(&mut self, now: Instant) {
        if self.screen_summary.next.is_some_and(|at| now < at) {
            return;
        }
        self.screen_summary.next = Some(now + SCREEN_SUMMARY_INTERVAL);
        let totals = self.stats.snapshot();
        let before = std::mem::replace(&mut self.screen_summary.logged, totals);
        info!(
            untrusted_rejected = totals.untrusted_rejected - before.untrusted_rejected,
            untrusted_dropped = totals.untrusted_dropped - before.untrusted_dropped,
            scanners_dropped = totals.scanners_dropped - before.scanners_dropped,
            flood_limited = totals.flood_limited - before.flood_limited,
            "requests turned away since the last summary (at most one line per 10 s)"
        );
    }

    fn reject_statelessly(&mut self, request: &Message, source: Peer, status: u16, reason: &str) {
        // An ACK is never answered, and without a usable Via there is no way back.
        if request.method() == Some(Method::Ack) {
            return;
        }
        let Some(destination) = reply_target(request, source) else {
            return;
        };
        let warning = format!("399 sihai \"{}\"", reason.replace('"', "'"));
        let tag = new_tag();
        let response = MessageBuilder::response_to(request, status, reason, Some(&tag))
            .header(HeaderName::Warning, &warning)
            .header(HeaderName::Server, &self.user_agent)
            .build();
        if let Some(method) = request.method() {
            self.stats.sip.reply_sent(method.as_str(), status);
        }
        self.outbox.push_back(Transmit {
            destination,
            payload: response.wire(),
        });
    }

    fn drain_events(&mut self, now: Instant, wall: Timestamp) {
        while let Some(event) = self.transactions.poll_event() {
            match event {
                Event::Request {
                    key,
                    request,
                    source,
                } => {
                    trace!(%source, method = ?request.method(), "request");
                    let has_to_tag = request.to().is_ok_and(|t| t.tag().is_some());
                    if request.method() == Some(Method::Invite) && !has_to_tag {
                        if self.draining && !self.calls.is_call_in_progress(&request) {
                            debug!(%source, "refusing a new call: draining");
                            self.refuse_while_draining(now, &key, &request);
                            continue;
                        }
                        if let Some(answer) = responder::invite_precheck(&request) {
                            let response = answer.build(&request, &new_tag(), &self.user_agent);
                            let _ = self.transactions.respond(now, &key, response);
                            continue;
                        }
                        self.stats.call_offered(wall);
                        let table = self.routing.load_full();
                        self.calls.on_invite(
                            &mut self.transactions,
                            &table,
                            key,
                            request,
                            source,
                            now,
                            wall,
                        );
                    } else if has_to_tag && self.calls.owns_dialog(&request) {
                        self.calls
                            .on_in_dialog(&mut self.transactions, key, request, now, wall);
                    } else if self.draining && request.method() == Some(Method::Options) {
                        // A dispatcher's probe: this node is going away.
                        self.refuse_while_draining(now, &key, &request);
                    } else if let Some(answer) = responder::answer(&request) {
                        let response = answer.build(&request, &new_tag(), &self.user_agent);
                        if let Err(err) = self.transactions.respond(now, &key, response) {
                            debug!(%err, "could not respond");
                        }
                    }
                }
                Event::Response { key, response } => {
                    self.calls
                        .on_response(&mut self.transactions, key, response, now, wall)
                }
                Event::Cancelled { invite } => {
                    self.calls
                        .on_cancel(&mut self.transactions, &invite, now, wall)
                }
                Event::StrayAck { request, .. } => {
                    Stats::bump(&self.stats.stray_acks);
                    self.calls.on_ack(&request);
                }
                Event::StrayResponse { source, response } => {
                    if !self.calls.on_stray_response(&response) {
                        Stats::bump(&self.stats.dropped_responses);
                        debug!(%source, "dropping response that matches no transaction");
                    }
                }
                Event::Timeout { key } => {
                    Stats::bump(&self.stats.transaction_timeouts);
                    if let TransactionKey::Client(key) = key {
                        self.calls
                            .on_client_failure(&mut self.transactions, key, true, now, wall);
                    }
                }
                Event::TransportError { key } => {
                    Stats::bump(&self.stats.transport_errors);
                    if let TransactionKey::Client(key) = key {
                        self.calls
                            .on_client_failure(&mut self.transactions, key, false, now, wall);
                    }
                }
                Event::Terminated { .. } => {}
            }
        }
    }
}

/// Where to send a stateless answer. A Via whose parameters are malformed (RFC 4475
/// §3.1.2.1) still names the sender in its sent-by, so the answer goes there without
/// the parameters (and so without `rport`).
fn reply_target(request: &Message, source: Peer) -> Option<Peer> {
    if is_answerable(request) {
        return request
            .top_via()
            .ok()
            .map(|via| via.response_target(source));
    }
    let top = request.vias().next()?;
    let without_params = top.split(';').next()?;
    Via::parse(without_params)
        .ok()
        .map(|via| via.response_target(source))
}

/// A To tag: 64 random bits in hex (RFC 3261 §19.3 asks for at least 32).
fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use sihai_sip::Transport;

    const CONFIG: &str = r#"
[sip]
[[sip.listen]]
transport = "udp"
address = "127.0.0.1:5060"
[[trunk]]
name = "lab"
sources = ["192.0.2.0/24"]
gateway = "sip:{number}@127.0.0.1:5080"
[[enterprise]]
id = "acme"
name = "Acme"
[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"
[[plan]]
name = "main"
enterprise = "acme"
group = "sales"
[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000001", ring_timeout_s = 5 }, { number = "13900000002" }]
"#;

    fn core() -> Core {
        core_with(CONFIG)
    }

    fn core_with(config: &str) -> Core {
        let config = sihai_config::Config::from_str(config, "test.toml").unwrap();
        let routing = Arc::new(ArcSwap::from_pointee(RoutingTable::compile(&config)));
        let b2bua = B2buaConfig {
            timers: sihai_transaction::TimerConfig::default(),
            user_agent: "sihai-test".into(),
            udp: Some("127.0.0.1:5060".parse().unwrap()),
            tcp: None,
        };
        Core::new(b2bua, routing, Arc::new(Stats::default()))
    }

    fn wall() -> Timestamp {
        Timestamp::now()
    }

    fn udp_peer() -> Peer {
        Peer::new(Transport::Udp, "192.0.2.7:5062".parse().unwrap())
    }

    fn drain(core: &mut Core) -> Vec<Transmit> {
        std::iter::from_fn(|| core.poll_transmit()).collect()
    }

    fn status(t: &Transmit) -> u16 {
        Message::parse(t.payload.clone()).unwrap().status().unwrap()
    }

    const INVITE: &str = "INVITE sip:4009999999@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKcore1;rport\r\n\
        From: <sip:13800138000@192.0.2.7>;tag=a\r\nTo: <sip:4009999999@127.0.0.1>\r\n\
        Call-ID: core-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn invite_is_answered_once_and_retransmissions_replay_the_final_response() {
        let mut core = core();
        let now = Instant::now();
        core.handle_received(
            now,
            wall(),
            Bytes::from_static(INVITE.as_bytes()),
            udp_peer(),
        );
        let sent = drain(&mut core);
        assert_eq!(sent.iter().map(status).collect::<Vec<_>>(), vec![100, 404]);
        assert!(
            sent.iter().all(|t| t.destination == udp_peer()),
            "rport: back to the source"
        );

        core.handle_received(
            now + Duration::from_millis(100),
            wall(),
            Bytes::from_static(INVITE.as_bytes()),
            udp_peer(),
        );
        let replay = drain(&mut core);
        assert_eq!(replay.len(), 1);
        assert_eq!(
            replay[0].payload, sent[1].payload,
            "the same 404, To tag included"
        );
        assert_eq!(core.stats.snapshot().requests, 2);
    }

    #[test]
    fn timer_g_retransmits_until_timer_h_then_the_transaction_ends() {
        let mut core = core();
        let start = Instant::now();
        core.handle_received(
            start,
            wall(),
            Bytes::from_static(INVITE.as_bytes()),
            udp_peer(),
        );
        drain(&mut core);
        let mut retransmissions = 0;
        while let Some(at) = core.poll_timeout() {
            core.handle_timeout(at, wall());
            retransmissions += drain(&mut core).len();
            assert!(at <= start + Duration::from_secs(40), "timers must stop");
        }
        // G at 0.5, 1.5, 3.5, 7.5, then every T2 = 4 s (11.5 ... 31.5), until H at 32 s.
        assert_eq!(retransmissions, 10);
        assert_eq!(core.transactions(), 0);
        assert_eq!(core.stats.snapshot().transaction_timeouts, 1);
    }

    #[test]
    fn malformed_request_is_rejected_statelessly_with_a_warning() {
        let mut core = core();
        let broken = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        core.handle_received(Instant::now(), wall(), Bytes::from(broken), udp_peer());
        let sent = drain(&mut core);
        assert_eq!(sent.len(), 1);
        let response = Message::parse(sent[0].payload.clone()).unwrap();
        assert_eq!(response.status(), Some(400));
        assert_eq!(
            response.reason(),
            Some("CSeq method does not match request method")
        );
        assert_eq!(
            response.header(HeaderName::Warning),
            Some("399 sihai \"CSeq method does not match request method\"")
        );
        assert_eq!(
            core.transactions(),
            0,
            "no transaction for a request that failed validation"
        );
    }

    #[test]
    fn a_reconfigured_user_agent_is_sent_from_then_on() {
        let mut core = core();
        let broken = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
        let server_header = |core: &mut Core, branch: &str| {
            let request = broken.replace("z9hG4bKcore1", branch);
            core.handle_received(Instant::now(), wall(), Bytes::from(request), udp_peer());
            let sent = drain(core);
            let response = Message::parse(sent[0].payload.clone()).unwrap();
            response.header(HeaderName::Server).map(str::to_string)
        };
        assert_eq!(
            server_header(&mut core, "z9hG4bKua1").as_deref(),
            Some("sihai-test")
        );
        core.reconfigure("sihai-reloaded", std::time::Duration::from_secs(5));
        assert_eq!(
            server_header(&mut core, "z9hG4bKua2").as_deref(),
            Some("sihai-reloaded")
        );
    }

    #[test]
    fn a_via_with_broken_parameters_still_gets_its_400() {
        let mut core = core();
        let broken = INVITE.replace("branch=z9hG4bKcore1;rport", "branch=z9hG4bKcore1;;");
        core.handle_received(Instant::now(), wall(), Bytes::from(broken), udp_peer());
        let sent = drain(&mut core);
        assert_eq!(sent.len(), 1);
        assert_eq!(status(&sent[0]), 400);
        // No usable rport: the sent-by port.
        assert_eq!(sent[0].destination, udp_peer());
    }

    #[test]
    fn unparsable_messages_and_stray_responses_are_dropped_and_counted() {
        let mut core = core();
        core.handle_received(
            Instant::now(),
            wall(),
            Bytes::from_static(b"\x16\x03\x01 TLS hello"),
            udp_peer(),
        );
        let stray = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnobody\r\n\
            From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        core.handle_received(Instant::now(), wall(), Bytes::from(stray), udp_peer());
        let bad_response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\r\n";
        core.handle_received(
            Instant::now(),
            wall(),
            Bytes::from(bad_response),
            udp_peer(),
        );
        assert!(drain(&mut core).is_empty());
        let stats = core.stats.snapshot();
        assert_eq!((stats.unparsable, stats.dropped_responses), (1, 2));
    }

    #[test]
    fn ack_for_the_final_response_is_absorbed() {
        let mut core = core();
        let now = Instant::now();
        core.handle_received(
            now,
            wall(),
            Bytes::from_static(INVITE.as_bytes()),
            udp_peer(),
        );
        let sent = drain(&mut core);
        let final_response = Message::parse(sent[1].payload.clone()).unwrap();
        let ack = MessageBuilder::ack_for(
            &Message::parse(Bytes::from_static(INVITE.as_bytes())).unwrap(),
            &final_response,
        )
        .build();
        core.handle_received(now, wall(), ack.wire(), udp_peer());
        assert!(drain(&mut core).is_empty(), "an ACK is never answered");
        // Confirmed: no more retransmissions; Timer I ends the transaction.
        let at = core.poll_timeout().expect("timer I");
        core.handle_timeout(at, wall());
        assert!(drain(&mut core).is_empty());
        assert_eq!(core.transactions(), 0);
        assert_eq!(core.stats.snapshot().stray_acks, 0);
    }

    // ------------------------------------------------------------ whole calls

    const CALL: &str = "INVITE sip:4001234567@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKcall1;rport\r\n\
        From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>\r\n\
        Call-ID: call-1@carrier\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:13800138000@192.0.2.7:5062>\r\n\
        Content-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=-\r\n";

    fn phone_peer() -> Peer {
        Peer::new(Transport::Udp, "127.0.0.1:5080".parse().unwrap())
    }

    fn parsed(sent: &[Transmit]) -> Vec<(Peer, Message)> {
        sent.iter()
            .map(|t| (t.destination, Message::parse(t.payload.clone()).unwrap()))
            .collect()
    }

    fn requests_to_phones(sent: &[(Peer, Message)], method: Method<'_>) -> Vec<Message> {
        sent.iter()
            .filter(|(p, m)| *p == phone_peer() && m.method() == Some(method))
            .map(|(_, m)| m.clone())
            .collect()
    }

    fn statuses_to_caller(sent: &[(Peer, Message)]) -> Vec<u16> {
        sent.iter()
            .filter(|(p, m)| *p == udp_peer() && !m.is_request())
            .filter_map(|(_, m)| m.status())
            .collect()
    }

    /// The phone answers our INVITE (or BYE, CANCEL).
    fn phone_says(
        core: &mut Core,
        now: Instant,
        request: &Message,
        status: u16,
        tag: &str,
        body: Option<&str>,
    ) {
        let b = MessageBuilder::response_to(request, status, "x", Some(tag))
            .header(HeaderName::Contact, "<sip:phone@127.0.0.1:5080>");
        let response = match body {
            Some(sdp) => b.body("application/sdp", sdp.as_bytes()),
            None => b.build(),
        };
        core.handle_received(now, wall(), response.wire(), phone_peer());
    }

    #[test]
    fn a_call_is_routed_answered_bridged_and_recorded() {
        let mut core = core();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), Bytes::from_static(CALL.as_bytes()), udp_peer());
        let sent = parsed(&drain(&mut core));
        assert_eq!(statuses_to_caller(&sent), vec![100]);
        let invites = requests_to_phones(&sent, Method::Invite);
        assert_eq!(invites.len(), 1);
        let leg = &invites[0];
        assert_eq!(leg.request_uri(), Some("sip:13900000001@127.0.0.1:5080"));
        assert!(
            leg.header(HeaderName::Diversion)
                .is_some_and(|d| d.contains("4001234567")),
            "the phone sees the dialled 400 number"
        );
        assert!(
            leg.from().unwrap().uri.starts_with("sip:13800138000@"),
            "the phone sees the caller"
        );
        assert_ne!(
            leg.call_id().unwrap(),
            "call-1@carrier",
            "each leg is its own dialog"
        );
        assert_eq!(&leg.body()[..], b"v=0\r\ns=-\r\n");

        phone_says(&mut core, t0, leg, 180, "ph1", None);
        let sent = parsed(&drain(&mut core));
        assert_eq!(statuses_to_caller(&sent), vec![180]);
        let caller_tag = sent[0].1.to().unwrap().tag().unwrap().to_string();

        phone_says(&mut core, t0, leg, 200, "ph1", Some("v=0\r\ns=phone\r\n"));
        let sent = parsed(&drain(&mut core));
        assert_eq!(
            requests_to_phones(&sent, Method::Ack).len(),
            1,
            "the phone's 2xx is ACKed on its leg"
        );
        let ok = sent
            .iter()
            .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
            .expect("200 to the caller")
            .1
            .clone();
        assert_eq!(&ok.body()[..], b"v=0\r\ns=phone\r\n");
        assert_eq!(ok.to().unwrap().tag(), Some(caller_tag.as_str()));
        assert_eq!(core.active_calls(), 1);

        // The caller ACKs, talks for 42 s and hangs up.
        let ack = format!(
            "ACK sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKack1\r\n\
             From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>;tag={caller_tag}\r\n\
             Call-ID: call-1@carrier\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        core.handle_received(t0, wall(), Bytes::from(ack), udp_peer());
        assert!(drain(&mut core).is_empty());
        let bye = format!(
            "BYE sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKbye1\r\n\
             From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>;tag={caller_tag}\r\n\
             Call-ID: call-1@carrier\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        let t1 = t0 + Duration::from_secs(42);
        core.handle_received(t1, wall(), Bytes::from(bye), udp_peer());
        let sent = parsed(&drain(&mut core));
        assert_eq!(statuses_to_caller(&sent), vec![200]);
        let byes = requests_to_phones(&sent, Method::Bye);
        assert_eq!(
            byes.len(),
            1,
            "BYE from the caller ends the phone's leg too"
        );
        assert_eq!(byes[0].to().unwrap().tag(), Some("ph1"));
        assert_eq!(core.active_calls(), 0);

        let (cdr, alert) = core.poll_record().expect("a CDR when the call ends");
        assert!(alert.is_none(), "answered calls raise no missed-call alert");
        assert_eq!(cdr.number, "4001234567");
        assert_eq!(cdr.caller, "13800138000");
        assert_eq!(cdr.caller_province.as_deref(), Some("北京"));
        assert_eq!(cdr.answered_by.as_deref(), Some("13900000001"));
        assert_eq!(cdr.outcome, sihai_store::Outcome::Answered);
        assert_eq!(cdr.talk_seconds, 42);
        assert_eq!(cdr.hangup_side, Some(sihai_store::HangupSide::Caller));
        assert!(cdr.ring_at.is_some() && cdr.answer_at.is_some());
    }

    #[test]
    fn busy_phone_fails_over_to_the_next() {
        let mut core = core();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), Bytes::from_static(CALL.as_bytes()), udp_peer());
        let first = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
        phone_says(&mut core, t0, &first, 486, "ph1", None);
        let sent = parsed(&drain(&mut core));
        assert_eq!(
            requests_to_phones(&sent, Method::Ack).len(),
            1,
            "the 486 is ACKed by the transaction"
        );
        let second = requests_to_phones(&sent, Method::Invite);
        assert_eq!(second.len(), 1);
        assert_eq!(
            second[0].request_uri(),
            Some("sip:13900000002@127.0.0.1:5080")
        );
        phone_says(&mut core, t0, &second[0], 486, "ph2", None);
        let sent = parsed(&drain(&mut core));
        assert_eq!(statuses_to_caller(&sent), vec![486], "busy everywhere");
        let (cdr, _) = core.poll_record().unwrap();
        assert_eq!(cdr.outcome, sihai_store::Outcome::Busy);
        assert_eq!(
            cdr.attempts
                .iter()
                .map(|a| a.result.as_str())
                .collect::<Vec<_>>(),
            vec!["486", "486"]
        );
    }

    #[test]
    fn silent_phone_is_cancelled_after_its_ring_timeout() {
        let mut core = core();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), Bytes::from_static(CALL.as_bytes()), udp_peer());
        let first = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
        phone_says(&mut core, t0, &first, 180, "ph1", None);
        drain(&mut core);
        // Drive the clock to phone 1's 5 s ring timeout.
        let mut now = t0;
        let mut cancels = Vec::new();
        let mut second = Vec::new();
        while let Some(at) = core.poll_timeout() {
            if at > t0 + Duration::from_secs(6) {
                break;
            }
            now = at;
            core.handle_timeout(now, wall());
            let sent = parsed(&drain(&mut core));
            cancels.extend(requests_to_phones(&sent, Method::Cancel));
            second.extend(
                requests_to_phones(&sent, Method::Invite)
                    .into_iter()
                    .filter(|m| m.call_id() != first.call_id()),
            );
            second.dedup_by(|a, b| a.call_id() == b.call_id());
        }
        assert!(now >= t0 + Duration::from_secs(5));
        // Over UDP the CANCEL is retransmitted (Timer E): count transactions, not datagrams.
        cancels.dedup_by(|a, b| a.top_via().unwrap().branch() == b.top_via().unwrap().branch());
        assert_eq!(cancels.len(), 1);
        assert_eq!(cancels[0].call_id(), first.call_id());
        assert_eq!(second.len(), 1);
        assert_eq!(
            second[0].request_uri(),
            Some("sip:13900000002@127.0.0.1:5080")
        );

        // The first phone confirms the CANCEL with 487; the second is busy.
        phone_says(&mut core, now, &first, 487, "ph1", None);
        phone_says(&mut core, now, &second[0], 486, "ph2", None);
        drain(&mut core);
        let (cdr, _) = core.poll_record().expect("a CDR when the hunt fails");
        assert_eq!(
            cdr.attempts
                .iter()
                .map(|a| a.result.as_str())
                .collect::<Vec<_>>(),
            vec!["no_answer", "486"],
            "a phone that rang out its ring timeout did not answer; nobody cancelled it"
        );
    }

    #[test]
    fn caller_cancel_cancels_ringing_phones_and_answers_487() {
        let mut core = core();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), Bytes::from_static(CALL.as_bytes()), udp_peer());
        let first = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
        phone_says(&mut core, t0, &first, 180, "ph1", None);
        drain(&mut core);
        let cancel = MessageBuilder::cancel_for(
            &Message::parse(Bytes::from_static(CALL.as_bytes())).unwrap(),
        )
        .build();
        core.handle_received(t0, wall(), cancel.wire(), udp_peer());
        let sent = parsed(&drain(&mut core));
        let mut statuses = statuses_to_caller(&sent);
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            vec![200, 487],
            "200 for the CANCEL, 487 for the INVITE"
        );
        assert_eq!(requests_to_phones(&sent, Method::Cancel).len(), 1);
        let (cdr, _) = core.poll_record().unwrap();
        assert_eq!(cdr.outcome, sihai_store::Outcome::Cancelled);
        assert_eq!(cdr.attempts.len(), 1);
        assert_eq!(cdr.attempts[0].result, "cancelled");
    }

    fn stranger() -> Peer {
        Peer::new(Transport::Udp, "198.51.100.1:5060".parse().unwrap())
    }

    /// `CALL` as sent by an address that is no trunk.
    fn strangers_call() -> Bytes {
        Bytes::from(CALL.replace("192.0.2.7:5062;branch", "198.51.100.1:5060;branch"))
    }

    /// Runs the core's timers from `from` for `seconds` in 100 ms steps.
    fn run_for(core: &mut Core, from: Instant, seconds: u64) -> Vec<Transmit> {
        let mut sent = Vec::new();
        for step in 1..=seconds * 10 {
            core.handle_timeout(from + Duration::from_millis(100 * step), wall());
            sent.extend(drain(core));
        }
        sent
    }

    #[test]
    fn untrusted_invite_gets_one_stateless_403_and_no_transaction() {
        let mut core = core();
        let stats = core.stats.clone();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), strangers_call(), stranger());
        let sent = parsed(&drain(&mut core));
        let codes: Vec<(Peer, Option<u16>)> = sent.iter().map(|(p, m)| (*p, m.status())).collect();
        assert_eq!(codes, vec![(stranger(), Some(403))], "no 100, one 403");
        assert_eq!(core.transactions(), 0, "no transaction");
        assert_eq!(core.poll_timeout(), None, "nothing to retransmit");
        assert!(
            run_for(&mut core, t0, 40).is_empty(),
            "nothing more over 40 s (Timer H is 32 s)"
        );
        assert!(
            core.poll_record().is_none(),
            "no CDR for traffic from outside the trunks"
        );
        let counted = stats.snapshot();
        assert_eq!((counted.untrusted_rejected, counted.requests), (1, 0));
    }

    #[test]
    fn a_listener_set_to_drop_answers_untrusted_requests_with_nothing() {
        let mut core = core();
        let quiet: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let loud: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        core.set_screening(ScreenSettings {
            listeners: vec![
                (Transport::Udp, quiet, Untrusted::Drop),
                (Transport::Udp, loud, Untrusted::Reject),
            ],
            ..ScreenSettings::default()
        });
        let t0 = Instant::now();
        core.handle_received_on(t0, wall(), strangers_call(), stranger(), Some(quiet));
        assert!(drain(&mut core).is_empty());
        assert_eq!(core.transactions(), 0);
        assert_eq!(core.stats.snapshot().untrusted_dropped, 1);
        core.handle_received_on(t0, wall(), strangers_call(), stranger(), Some(loud));
        assert_eq!(
            drain(&mut core).iter().map(status).collect::<Vec<_>>(),
            [403]
        );
        // The trunk is served on the quiet listener as on any other.
        core.handle_received_on(
            t0,
            wall(),
            Bytes::from_static(INVITE.as_bytes()),
            udp_peer(),
            Some(quiet),
        );
        assert_eq!(
            drain(&mut core).iter().map(status).collect::<Vec<_>>(),
            [100, 404]
        );
    }

    #[test]
    fn untrusted_ack_and_in_dialog_requests_never_make_a_transaction() {
        let mut core = core();
        let t0 = Instant::now();
        let in_dialog = |method: &str| {
            Bytes::from(format!(
                "{method} sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKx{method}\r\n\
                 From: <sip:a@198.51.100.1>;tag=s\r\nTo: <sip:b@127.0.0.1>;tag=nosuchcall\r\n\
                 Call-ID: nosuchcall\r\nCSeq: 2 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ))
        };
        core.handle_received(t0, wall(), in_dialog("ACK"), stranger());
        assert!(drain(&mut core).is_empty(), "an ACK is never answered");
        core.handle_received(t0, wall(), in_dialog("BYE"), stranger());
        assert_eq!(
            drain(&mut core).iter().map(status).collect::<Vec<_>>(),
            [481]
        );
        core.handle_received(t0, wall(), in_dialog("INVITE"), stranger());
        assert_eq!(
            drain(&mut core).iter().map(status).collect::<Vec<_>>(),
            [481]
        );
        assert_eq!(core.transactions(), 0);
        assert!(run_for(&mut core, t0, 40).is_empty());
        let counted = core.stats.snapshot();
        assert_eq!(
            (counted.untrusted_rejected, counted.untrusted_dropped),
            (2, 1)
        );
    }

    #[test]
    fn scanners_are_dropped_even_from_a_trunk() {
        let mut core = core();
        core.set_screening(ScreenSettings {
            scanner_user_agents: vec!["warbot".into()],
            ..ScreenSettings::default()
        });
        let t0 = Instant::now();
        for agent in ["friendly-scanner", "sipvicious 0.3.4", "WarBot/2"] {
            let scan = CALL.replace(
                "Max-Forwards: 70\r\n",
                &format!("Max-Forwards: 70\r\nUser-Agent: {agent}\r\n"),
            );
            core.handle_received(t0, wall(), Bytes::from(scan), udp_peer());
            assert!(drain(&mut core).is_empty(), "{agent}: no answer");
        }
        assert_eq!(core.transactions(), 0);
        assert_eq!(core.active_calls(), 0);
        assert_eq!(core.stats.snapshot().scanners_dropped, 3);
        // A carrier's own User-Agent is no scanner.
        let carrier = CALL.replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nUser-Agent: SoftX3000\r\n",
        );
        core.handle_received(t0, wall(), Bytes::from(carrier), udp_peer());
        assert_eq!(core.active_calls(), 1);
    }

    #[test]
    fn a_phone_that_is_no_trunk_still_reaches_its_call_in_dialog() {
        let mut core = core();
        let t0 = Instant::now();
        let (leg, _) = answered_call(&mut core, t0);
        // The answering phone (127.0.0.1, no trunk) re-INVITEs, then hangs up.
        let mut dialog = phone_dialog(&leg);
        let reinvite = dialog
            .request(
                Method::Invite,
                "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKphonereinv",
                "",
            )
            .build();
        core.handle_received(t0, wall(), reinvite.wire(), phone_peer());
        let sent = parsed(&drain(&mut core));
        assert!(
            sent.iter()
                .any(|(p, m)| *p == udp_peer() && m.method() == Some(Method::Invite)),
            "the re-INVITE is relayed to the caller: {sent:?}"
        );
        assert!(
            !sent
                .iter()
                .any(|(_, m)| m.status() == Some(403) || m.status() == Some(481)),
            "{sent:?}"
        );
        let bye = dialog
            .request(
                Method::Bye,
                "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKphonebye",
                "",
            )
            .build();
        core.handle_received(t0, wall(), bye.wire(), phone_peer());
        let sent = parsed(&drain(&mut core));
        assert!(
            sent.iter()
                .any(|(p, m)| *p == udp_peer() && m.method() == Some(Method::Bye)),
            "the caller is hung up: {sent:?}"
        );
        assert!(
            sent.iter()
                .any(|(p, m)| *p == phone_peer() && m.status() == Some(200)),
            "the phone's BYE is answered: {sent:?}"
        );
        let (cdr, _) = core.poll_record().unwrap();
        assert_eq!(cdr.hangup_side, Some(sihai_store::HangupSide::Phone));
        // Its retransmission, after the call is gone, is replayed by the transaction.
        core.handle_received(
            t0 + Duration::from_millis(500),
            wall(),
            bye.wire(),
            phone_peer(),
        );
        let replay = parsed(&drain(&mut core));
        assert_eq!(
            replay
                .iter()
                .map(|(p, m)| (*p, m.status()))
                .collect::<Vec<_>>(),
            [(phone_peer(), Some(200))]
        );
        assert_eq!(core.stats.snapshot().untrusted_rejected, 0);
    }

    #[test]
    fn the_flood_limit_drops_new_requests_but_spares_retransmissions() {
        let mut core = core();
        core.set_screening(ScreenSettings {
            max_requests_per_source: 5,
            ..ScreenSettings::default()
        });
        let options = |n: u32| {
            Bytes::from(format!(
                "OPTIONS sip:4001234567@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKopt{n}\r\n\
                 From: <sip:carrier@192.0.2.7>;tag=c{n}\r\nTo: <sip:4001234567@127.0.0.1>\r\n\
                 Call-ID: opt-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ))
        };
        let t0 = Instant::now();
        for n in 0..5 {
            core.handle_received(t0, wall(), options(n), udp_peer());
        }
        assert_eq!(drain(&mut core).len(), 5, "the burst is answered");
        core.handle_received(t0, wall(), options(5), udp_peer());
        assert!(drain(&mut core).is_empty(), "over the limit: dropped");
        core.handle_received(t0, wall(), options(0), udp_peer());
        assert_eq!(
            drain(&mut core).iter().map(status).collect::<Vec<_>>(),
            [200],
            "a retransmission is still answered from its transaction"
        );
        // Another source has its own budget.
        let other = Peer::new(Transport::Udp, "192.0.2.8:5062".parse().unwrap());
        core.handle_received(t0, wall(), options(6), other);
        assert_eq!(drain(&mut core).len(), 1);
        // A second later the source has its budget back.
        core.handle_received(t0 + Duration::from_secs(1), wall(), options(7), udp_peer());
        assert_eq!(drain(&mut core).len(), 1);
        assert_eq!(core.stats.snapshot().flood_limited, 1);
    }

    #[test]
    fn beyond_twice_the_limit_requests_are_dropped_unparsed_and_responses_never() {
        let mut core = core();
        core.set_screening(ScreenSettings {
            max_requests_per_source: 5,
            ..ScreenSettings::default()
        });
        let t0 = Instant::now();
        for _ in 0..100 {
            core.handle_received(t0, wall(), strangers_call(), stranger());
        }
        let counted = core.stats.snapshot();
        // 5 within the limit get their 403; the ceiling (10 a second) lets 5 more reach
        // the parser, to be dropped there; the other 90 are dropped unparsed.
        assert_eq!(counted.untrusted_rejected, 5);
        assert_eq!(counted.flood_limited, 95);
        assert_eq!(counted.requests + counted.rejected_requests, 0);
        assert_eq!(drain(&mut core).len(), 5);
        // Responses from that address are not limited: a phone answers from its own.
        let (leg, _) = answered_call(&mut core, t0);
        let phone = Peer::new(Transport::Udp, "198.51.100.1:5060".parse().unwrap());
        let ok = MessageBuilder::response_to(&leg, 200, "OK", Some("ph1"))
            .header(HeaderName::Contact, "<sip:phone@127.0.0.1:5080>")
            .body("application/sdp", b"v=0\r\n");
        core.handle_received(t0, wall(), ok.wire(), phone);
        assert_eq!(core.stats.snapshot().flood_limited, 95);
    }

    /// Sets up an answered call; returns the phone's leg INVITE and the caller's To tag.
    fn answered_call(core: &mut Core, t0: Instant) -> (Message, String) {
        core.handle_received(t0, wall(), Bytes::from_static(CALL.as_bytes()), udp_peer());
        let leg = requests_to_phones(&parsed(&drain(core)), Method::Invite).remove(0);
        phone_says(core, t0, &leg, 200, "ph1", Some("v=0\r\n"));
        let sent = parsed(&drain(core));
        let ok = sent
            .iter()
            .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
            .unwrap()
            .1
            .clone();
        (leg, ok.to().unwrap().tag().unwrap().to_string())
    }

    /// A request from the caller in its dialog with us (To the 400 `number`, tagged
    /// `caller_tag`), with a body of the given content type when there is one.
    fn caller_request(
        method: &str,
        cseq: u32,
        caller_tag: &str,
        number: &str,
        body: Option<(&str, &str)>,
    ) -> Bytes {
        let body_headers = body.map_or("Content-Length: 0\r\n".to_string(), |(kind, text)| {
            format!("Content-Type: {kind}\r\nContent-Length: {}\r\n", text.len())
        });
        Bytes::from(format!(
            "{method} sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK{method}{cseq}\r\n\
             From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:{number}@127.0.0.1>;tag={caller_tag}\r\n\
             Call-ID: call-1@carrier\r\nCSeq: {cseq} {method}\r\n{body_headers}\r\n{}",
            body.map_or("", |(_, text)| text)
        ))
    }

    /// A request from the caller of the plain 400 number, with a DTMF INFO body.
    fn from_caller(method: &str, cseq: u32, caller_tag: &str) -> Bytes {
        caller_request(
            method,
            cseq,
            caller_tag,
            "4001234567",
            Some(("application/dtmf-relay", "Signal=5\r\n")),
        )
    }

    #[test]
    fn in_dialog_requests_are_relayed_to_the_other_leg_and_answered_back() {
        let mut core = core();
        let t0 = Instant::now();
        let (leg, caller_tag) = answered_call(&mut core, t0);
        core.handle_received(t0, wall(), from_caller("INFO", 2, &caller_tag), udp_peer());
        let infos = requests_to_phones(&parsed(&drain(&mut core)), Method::Info);
        assert_eq!(infos.len(), 1);
        let info = &infos[0];
        assert_eq!(
            info.call_id(),
            leg.call_id(),
            "relayed inside the phone's dialog"
        );
        assert_eq!(info.to().unwrap().tag(), Some("ph1"));
        assert_eq!(&info.body()[..], b"Signal=5\r\n");
        phone_says(&mut core, t0, info, 200, "ph1", None);
        let sent = parsed(&drain(&mut core));
        let back: Vec<&Message> = sent
            .iter()
            .filter(|(p, _)| *p == udp_peer())
            .map(|(_, m)| m)
            .collect();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].status(), Some(200));
        assert_eq!(back[0].cseq().unwrap().method, Method::Info);
        assert_eq!(back[0].call_id(), Ok("call-1@carrier"));
    }

    #[test]
    fn a_relayed_request_still_gets_an_answer_when_the_call_ends_first() {
        let mut core = core();
        let t0 = Instant::now();
        let (leg, caller_tag) = answered_call(&mut core, t0);
        core.handle_received(t0, wall(), from_caller("INFO", 2, &caller_tag), udp_peer());
        drain(&mut core);
        // The phone hangs up before answering the INFO.
        let mut phone_dialog = phone_dialog(&leg);
        let bye = phone_dialog
            .request(
                Method::Bye,
                "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKphonebye",
                "",
            )
            .build();
        core.handle_received(t0, wall(), bye.wire(), phone_peer());
        let sent = parsed(&drain(&mut core));
        let to_caller: Vec<(Option<u16>, Option<Method<'_>>)> = sent
            .iter()
            .filter(|(p, _)| *p == udp_peer())
            .map(|(_, m)| (m.status(), m.method()))
            .collect();
        assert!(
            to_caller.contains(&(Some(481), None)),
            "the INFO is answered: {to_caller:?}"
        );
        assert!(
            to_caller.contains(&(None, Some(Method::Bye))),
            "the caller is hung up: {to_caller:?}"
        );
        let (cdr, _) = core.poll_record().unwrap();
        assert_eq!(cdr.hangup_side, Some(sihai_store::HangupSide::Phone));
    }

    /// The phone's view of the leg dialog (its tag is `ph1`).
    fn phone_dialog(leg: &Message) -> sihai_call::dialog::Dialog {
        let mut d = sihai_call::dialog::Dialog::as_uas(leg, "ph1", udp_peer()).unwrap();
        d.remote_target = leg
            .header(HeaderName::Contact)
            .map(|c| c.trim_matches(['<', '>']).to_string())
            .unwrap();
        d
    }

    #[test]
    fn cancel_waits_for_the_phones_first_provisional_response() {
        let mut core = core();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), Bytes::from_static(CALL.as_bytes()), udp_peer());
        let first = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
        // Phone 1 says nothing at all; its 5 s ring timeout passes.
        let mut now = t0;
        let mut cancels = 0;
        let mut second = None;
        while let Some(at) = core.poll_timeout() {
            if at > t0 + Duration::from_millis(5500) {
                break;
            }
            now = at;
            core.handle_timeout(now, wall());
            let sent = parsed(&drain(&mut core));
            cancels += requests_to_phones(&sent, Method::Cancel).len();
            second = second.or_else(|| {
                requests_to_phones(&sent, Method::Invite)
                    .into_iter()
                    .find(|m| m.call_id() != first.call_id())
            });
        }
        assert!(second.is_some(), "the hunt moved on to phone 2");
        assert_eq!(
            cancels, 0,
            "no CANCEL before a provisional response (RFC 3261 §9.1)"
        );
        // Phone 1 finally rings: now the CANCEL goes.
        phone_says(&mut core, now, &first, 180, "ph1", None);
        let sent = parsed(&drain(&mut core));
        let cancel = requests_to_phones(&sent, Method::Cancel);
        assert_eq!(cancel.len(), 1);
        assert_eq!(cancel[0].call_id(), first.call_id());
        assert!(
            statuses_to_caller(&sent).is_empty(),
            "a cancelled leg's ringing is not relayed"
        );
    }

    #[test]
    fn a_phone_at_capacity_is_skipped_and_recorded_as_such() {
        let mut core = core();
        let t0 = Instant::now();
        answered_call(&mut core, t0);
        // A second call while phone 1 (capacity 1) is talking goes to phone 2.
        let second = CALL
            .replace("call-1@carrier", "call-2@carrier")
            .replace("z9hG4bKcall1", "z9hG4bKcall2");
        core.handle_received(t0, wall(), Bytes::from(second), udp_peer());
        let invites = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite);
        assert_eq!(invites.len(), 1);
        assert_eq!(
            invites[0].request_uri(),
            Some("sip:13900000002@127.0.0.1:5080")
        );
        phone_says(&mut core, t0, &invites[0], 486, "ph2", None);
        drain(&mut core);
        let (cdr, _) = core.poll_record().expect("the second call's record");
        let attempts: Vec<(&str, &str)> = cdr
            .attempts
            .iter()
            .map(|a| (a.phone.as_str(), a.result.as_str()))
            .collect();
        assert_eq!(
            attempts,
            vec![("13900000002", "486"), ("13900000001", "at_capacity")]
        );
    }

    /// A reload that puts a new phone first does not reset the group's counters: the
    /// phone talking since before keeps its channel (capacity 1) until its call ends,
    /// and that call's end frees it in the new list.
    #[test]
    fn a_group_reloaded_with_another_phone_keeps_a_busy_phone_busy() {
        let mut core = core();
        let t0 = Instant::now();
        let (_, caller_tag) = answered_call(&mut core, t0);
        let reloaded = CONFIG.replace(
            "phones = [{ number = \"13900000001\"",
            "phones = [{ number = \"13900000003\" }, { number = \"13900000001\"",
        );
        assert_ne!(reloaded, CONFIG);
        let config = sihai_config::Config::from_str(&reloaded, "test.toml").unwrap();
        core.routing.store(Arc::new(RoutingTable::compile(&config)));

        // Each later call: the new phone is busy, so the hunt moves on.
        let phones_rung = |core: &mut Core, n: u32, at: Instant| -> Vec<String> {
            let call = CALL
                .replace("call-1@carrier", &format!("call-{n}@carrier"))
                .replace("z9hG4bKcall1", &format!("z9hG4bKcall{n}"));
            core.handle_received(at, wall(), Bytes::from(call), udp_peer());
            let mut rung = Vec::new();
            for _ in 0..3 {
                let invites = requests_to_phones(&parsed(&drain(core)), Method::Invite);
                let Some(invite) = invites.first() else { break };
                rung.push(invite.request_uri().unwrap().to_string());
                phone_says(core, at, invite, 486, &format!("busy{n}"), None);
            }
            rung
        };
        assert_eq!(
            phones_rung(&mut core, 2, t0),
            [
                "sip:13900000003@127.0.0.1:5080",
                "sip:13900000002@127.0.0.1:5080"
            ],
            "13900000001 is still on the call from before the reload"
        );
        while core.poll_record().is_some() {}

        // The first call ends; its phone is free in the new list.
        let t1 = t0 + Duration::from_secs(30);
        core.handle_received(
            t1,
            wall(),
            caller_request("BYE", 2, &caller_tag, "4001234567", None),
            udp_peer(),
        );
        drain(&mut core);
        let (cdr, _) = core.poll_record().expect("the first call's record");
        assert_eq!(cdr.answered_by.as_deref(), Some("13900000001"));
        assert_eq!(
            phones_rung(&mut core, 3, t1),
            [
                "sip:13900000003@127.0.0.1:5080",
                "sip:13900000001@127.0.0.1:5080",
                "sip:13900000002@127.0.0.1:5080"
            ]
        );
    }

    #[test]
    fn per_number_limits_refuse_with_486_and_503() {
        let limited = CONFIG.replace("plan = \"main\"\n", "plan = \"main\"\nmax_concurrent = 1\n");
        let mut core = core_with(&limited);
        let t0 = Instant::now();
        answered_call(&mut core, t0);
        let second = CALL
            .replace("call-1@carrier", "call-2@carrier")
            .replace("z9hG4bKcall1", "z9hG4bKcall2");
        core.handle_received(t0, wall(), Bytes::from(second), udp_peer());
        assert_eq!(
            statuses_to_caller(&parsed(&drain(&mut core))),
            vec![100, 486],
            "one call at a time on this number"
        );
        assert_eq!(
            core.poll_record().unwrap().0.outcome,
            sihai_store::Outcome::Busy
        );

        let rated = CONFIG.replace("plan = \"main\"\n", "plan = \"main\"\nmax_cps = 1\n");
        let mut core = core_with(&rated);
        core.handle_received(t0, wall(), Bytes::from_static(CALL.as_bytes()), udp_peer());
        drain(&mut core);
        let second = CALL
            .replace("call-1@carrier", "call-2@carrier")
            .replace("z9hG4bKcall1", "z9hG4bKcall2");
        core.handle_received(
            t0 + Duration::from_millis(10),
            wall(),
            Bytes::from(second),
            udp_peer(),
        );
        assert_eq!(
            statuses_to_caller(&parsed(&drain(&mut core))),
            vec![100, 503],
            "over one call per second"
        );
        let third = CALL
            .replace("call-1@carrier", "call-3@carrier")
            .replace("z9hG4bKcall1", "z9hG4bKcall3");
        core.handle_received(
            t0 + Duration::from_millis(1100),
            wall(),
            Bytes::from(third),
            udp_peer(),
        );
        let sent = parsed(&drain(&mut core));
        assert_eq!(
            requests_to_phones(&sent, Method::Invite).len(),
            1,
            "a second later the number accepts again"
        );
    }

    #[test]
    fn a_cancel_deferred_for_a_silent_phone_still_goes_after_the_call_ended() {
        let mut core = core();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), Bytes::from_static(CALL.as_bytes()), udp_peer());
        let leg = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
        // The caller gives up before the phone has said anything.
        let cancel = MessageBuilder::cancel_for(
            &Message::parse(Bytes::from_static(CALL.as_bytes())).unwrap(),
        )
        .build();
        core.handle_received(t0, wall(), cancel.wire(), udp_peer());
        let sent = parsed(&drain(&mut core));
        assert!(statuses_to_caller(&sent).contains(&487));
        assert!(
            requests_to_phones(&sent, Method::Cancel).is_empty(),
            "no CANCEL before a provisional response"
        );
        assert_eq!(core.active_calls(), 0, "the call is over");
        // The phone finally rings: the CANCEL it is owed goes now.
        phone_says(&mut core, t0, &leg, 180, "ph1", None);
        let cancels = requests_to_phones(&parsed(&drain(&mut core)), Method::Cancel);
        assert_eq!(cancels.len(), 1);
        assert_eq!(cancels[0].call_id(), leg.call_id());
    }

    // ------------------------------------------------------------ anchored media

    const OFFER: &str = "v=0\r\no=carrier 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n";
    const PHONE_ANSWER: &str = "v=0\r\no=phone 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 50000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

    fn anchored_core() -> Core {
        anchored_core_with(CONFIG)
    }

    /// A core for `config` with the relay on, five port pairs from 30000.
    fn anchored_core_with(config: &str) -> Core {
        let mut core = core_with(config);
        core.enable_media(sihai_call::media::MediaSettings {
            address: "127.0.0.1".parse().unwrap(),
            ports: 30000..=30009,
            relay: sihai_relay::RelayConfig::default(),
        })
        .unwrap();
        core
    }

    fn call_with_offer() -> Bytes {
        let call = CALL.replace(
            "Content-Length: 10\r\n\r\nv=0\r\ns=-\r\n",
            &format!("Content-Length: {}\r\n\r\n{OFFER}", OFFER.len()),
        );
        Bytes::from(call)
    }

    fn audio_of(msg: &Message) -> sihai_sdp::AudioStream {
        let body = String::from_utf8(msg.body().to_vec()).unwrap();
        sihai_sdp::SessionDescription::parse(&body)
            .unwrap()
            .audio()
            .unwrap()
    }

    fn rtp(seq: u16, payload_type: u8) -> Vec<u8> {
        let mut packet = Vec::new();
        let fields = sihai_media::RtpFields {
            marker: false,
            payload_type,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0xCA11,
        };
        sihai_media::write_rtp_to_vec(&mut packet, &fields, &[0xFF; 160]).unwrap();
        packet
    }

    #[test]
    fn an_anchored_call_hears_ringback_then_the_phone_through_the_relay() {
        let mut core = anchored_core();
        let caller_rtp: std::net::SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let phone_rtp: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), call_with_offer(), udp_peer());
        let sent = parsed(&drain(&mut core));
        let opened: Vec<_> = std::iter::from_fn(|| core.poll_port_event()).collect();
        let [
            sihai_call::media::PortEvent::Open(caller_port),
            sihai_call::media::PortEvent::Open(phone_port),
        ] = opened[..]
        else {
            panic!("two port pairs opened: {opened:?}")
        };

        // The phone is offered the relay, not the carrier's address.
        let leg = requests_to_phones(&sent, Method::Invite).remove(0);
        let offered = audio_of(&leg);
        assert_eq!(offered.address.to_string(), "127.0.0.1");
        assert_eq!(offered.port, phone_port);
        assert_eq!(
            offered.codecs[0].codec,
            sihai_sdp::Codec::Pcmu,
            "the caller's codec first"
        );

        // Ringing: the caller gets 183 with the relay's answer and ringback RTP.
        phone_says(&mut core, t0, &leg, 180, "ph1", None);
        let sent = parsed(&drain(&mut core));
        let progress = sent
            .iter()
            .find(|(p, m)| *p == udp_peer() && m.status() == Some(183))
            .expect("183 Session Progress")
            .1
            .clone();
        let answered = audio_of(&progress);
        assert_eq!(
            (answered.address.to_string().as_str(), answered.port),
            ("127.0.0.1", caller_port)
        );
        let mut ringback = Vec::new();
        let mut now = t0;
        for _ in 0..10 {
            while let Some(t) = core.poll_media_transmit() {
                ringback.push(t);
            }
            now += Duration::from_millis(20);
            core.handle_timeout(now, wall());
        }
        assert!(
            ringback.len() >= 10,
            "a packet every 20 ms: {}",
            ringback.len()
        );
        for t in &ringback {
            assert_eq!((t.from_port, t.to), (caller_port, caller_rtp));
            let packet = sihai_media::RtpPacket::parse(&t.payload).unwrap();
            assert_eq!(packet.payload_type(), 0, "PCMU, as the caller offered");
        }

        // Answer: the caller's 200 carries the same relay SDP; audio now flows through.
        phone_says(&mut core, now, &leg, 200, "ph1", Some(PHONE_ANSWER));
        let sent = parsed(&drain(&mut core));
        let ok = sent
            .iter()
            .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
            .expect("200 to the caller")
            .1
            .clone();
        assert_eq!(ok.body(), progress.body());
        while core.poll_media_transmit().is_some() {}
        // A bridged call reschedules on every packet; the timer heap must not grow with them.
        for seq in 1000..1500 {
            core.handle_media(now, wall(), caller_port, caller_rtp, &rtp(seq, 0));
        }
        assert!(
            core.pending_call_timers() <= 4,
            "{} timer entries for one call",
            core.pending_call_timers()
        );
        while core.poll_media_transmit().is_some() {}
        core.handle_media(now, wall(), caller_port, caller_rtp, &rtp(1500, 0));
        let forwarded: Vec<_> = std::iter::from_fn(|| core.poll_media_transmit())
            .filter(|t| t.to == phone_rtp)
            .collect();
        assert_eq!(forwarded.len(), 1, "the caller's packet reaches the phone");
        assert_eq!(forwarded[0].from_port, phone_port);
        let packet = sihai_media::RtpPacket::parse(&forwarded[0].payload).unwrap();
        assert_eq!(packet.payload_type(), 8, "transcoded to the phone's PCMA");
        assert_eq!(packet.payload()[0], sihai_media::Law::Alaw.silence());

        // The caller hangs up: both port pairs go back to the pool.
        let caller_tag = ok.to().unwrap().tag().unwrap().to_string();
        let bye = from_caller("BYE", 2, &caller_tag);
        core.handle_received(now, wall(), bye, udp_peer());
        let sent = parsed(&drain(&mut core));
        let phone_bye = requests_to_phones(&sent, Method::Bye).remove(0);
        phone_says(&mut core, now, &phone_bye, 200, "ph1", None);
        drain(&mut core);
        let closed: Vec<_> = std::iter::from_fn(|| core.poll_port_event()).collect();
        assert_eq!(
            closed,
            vec![
                sihai_call::media::PortEvent::Close(caller_port),
                sihai_call::media::PortEvent::Close(phone_port)
            ]
        );
        assert_eq!(core.media_ports_available(), Some(5));
        assert!(core.poll_record().is_some());
    }

    #[test]
    fn an_offer_without_a_usable_codec_is_refused_with_488_and_holds_no_ports() {
        let mut core = anchored_core();
        let g729 = CALL.replace("Content-Length: 10\r\n\r\nv=0\r\ns=-\r\n", &{
            let offer = OFFER
                .replace("RTP/AVP 0 101", "RTP/AVP 18")
                .replace("a=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:18 G729/8000\r\n");
            format!("Content-Length: {}\r\n\r\n{offer}", offer.len())
        });
        core.handle_received(Instant::now(), wall(), Bytes::from(g729), udp_peer());
        let sent = parsed(&drain(&mut core));
        assert_eq!(statuses_to_caller(&sent), vec![100, 488]);
        assert!(requests_to_phones(&sent, Method::Invite).is_empty());
        assert_eq!(core.poll_port_event(), None);
        assert_eq!(core.media_ports_available(), Some(5));
        let (cdr, _) = core.poll_record().expect("a CDR for the refused call");
        assert_eq!(cdr.hangup_cause.as_deref(), Some("488"));
    }

    #[test]
    fn no_relay_port_leaks_after_ten_thousand_calls_ended_every_way() {
        let mut core = anchored_core();
        let mut now = Instant::now();
        let (mut opened, mut closed) = (0, 0);
        for i in 0..10_000u32 {
            let invite = String::from_utf8(call_with_offer().to_vec())
                .unwrap()
                .replace("call-1@carrier", &format!("leak-{i}@carrier"))
                .replace("z9hG4bKcall1", &format!("z9hG4bKleak{i}"));
            let invite_msg = Message::parse(Bytes::from(invite.clone())).unwrap();
            core.handle_received(now, wall(), Bytes::from(invite), udp_peer());
            let sent = parsed(&drain(&mut core));
            let leg = requests_to_phones(&sent, Method::Invite).remove(0);
            match i % 4 {
                // Answered, then the caller hangs up.
                0 | 1 => {
                    phone_says(&mut core, now, &leg, 200, "ph", Some(PHONE_ANSWER));
                    let sent = parsed(&drain(&mut core));
                    let ok = &sent
                        .iter()
                        .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
                        .unwrap()
                        .1;
                    let tag = ok.to().unwrap().tag().unwrap().to_string();
                    let bye = format!(
                        "BYE sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKleakbye{i}\r\n\
                         From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>;tag={tag}\r\n\
                         Call-ID: leak-{i}@carrier\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
                    );
                    core.handle_received(now, wall(), Bytes::from(bye), udp_peer());
                    let sent = parsed(&drain(&mut core));
                    let phone_bye = requests_to_phones(&sent, Method::Bye).remove(0);
                    phone_says(&mut core, now, &phone_bye, 200, "ph", None);
                }
                // Both phones of the group are busy.
                2 => {
                    phone_says(&mut core, now, &leg, 486, "ph", None);
                    let sent = parsed(&drain(&mut core));
                    if let Some(next) = requests_to_phones(&sent, Method::Invite).pop() {
                        phone_says(&mut core, now, &next, 486, "ph2", None);
                    }
                }
                // The caller gives up while the phone rings.
                _ => {
                    phone_says(&mut core, now, &leg, 180, "ph", None);
                    drain(&mut core);
                    let cancel = MessageBuilder::cancel_for(&invite_msg).build();
                    core.handle_received(now, wall(), cancel.wire(), udp_peer());
                    let sent = parsed(&drain(&mut core));
                    for cancel in requests_to_phones(&sent, Method::Cancel) {
                        phone_says(&mut core, now, &cancel, 200, "ph", None);
                    }
                    phone_says(&mut core, now, &leg, 487, "ph", None);
                }
            }
            drain(&mut core);
            while core.poll_media_transmit().is_some() {}
            while let Some(event) = core.poll_port_event() {
                match event {
                    sihai_call::media::PortEvent::Open(_) => opened += 1,
                    sihai_call::media::PortEvent::Close(_) => closed += 1,
                }
            }
            assert_eq!(core.active_calls(), 0, "call {i} ({}) did not end", i % 4);
            assert_eq!(core.media_ports_available(), Some(5), "after call {i}");
            while core.poll_record().is_some() {}
            now += Duration::from_millis(1);
        }
        assert_eq!((opened, closed), (20_000, 20_000));
    }

    #[test]
    fn the_numbers_ringback_prompt_plays_instead_of_the_tone() {
        let config = CONFIG.replace(
            "plan = \"main\"\n[[plan]]",
            "plan = \"main\"\nringback = \"acme-ringback\"\n[[plan]]",
        ) + "[[prompt]]\nname = \"acme-ringback\"\nfile = \"acme.wav\"\n";
        let mut core = anchored_core_with(&config);
        let level = 3000i16;
        let prompt = sihai_media::Prompt::new(&[level; 8000]);
        core.set_prompts(Arc::new(
            [("acme-ringback".to_string(), prompt)]
                .into_iter()
                .collect(),
        ));
        let t0 = Instant::now();
        core.handle_received(t0, wall(), call_with_offer(), udp_peer());
        let leg = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
        phone_says(&mut core, t0, &leg, 180, "ph1", None);
        drain(&mut core);
        let first = core.poll_media_transmit().expect("ringback starts at once");
        let packet = sihai_media::RtpPacket::parse(&first.payload).unwrap();
        let expected = sihai_media::Law::Ulaw.encode(level);
        assert!(
            packet.payload().iter().all(|&b| b == expected),
            "the prompt's audio, not the 450 Hz tone"
        );
    }

    #[test]
    fn a_plan_can_pass_the_phones_own_early_media_instead_of_ringback() {
        let config = CONFIG.replace(
            "group = \"sales\"\n[[group]]",
            "group = \"sales\"\nearly_media = \"phone\"\n[[group]]",
        );
        assert_ne!(config, CONFIG);
        let mut core = anchored_core_with(&config);
        let t0 = Instant::now();
        core.handle_received(t0, wall(), call_with_offer(), udp_peer());
        let leg = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
        let opened: Vec<_> = std::iter::from_fn(|| core.poll_port_event()).collect();
        let [
            sihai_call::media::PortEvent::Open(caller_port),
            sihai_call::media::PortEvent::Open(phone_port),
        ] = opened[..]
        else {
            panic!("{opened:?}")
        };
        // 183 with the phone's SDP: the caller gets 183 with ours, and no ringback.
        phone_says(&mut core, t0, &leg, 183, "ph1", Some(PHONE_ANSWER));
        let sent = parsed(&drain(&mut core));
        assert!(
            sent.iter()
                .any(|(p, m)| *p == udp_peer() && m.status() == Some(183))
        );
        core.handle_timeout(t0 + Duration::from_millis(100), wall());
        assert!(
            core.poll_media_transmit().is_none(),
            "no ringback while the phone's early media passes"
        );
        // The phone's announcement reaches the caller, transcoded to PCMU.
        let phone_rtp: std::net::SocketAddr = "127.0.0.1:50000".parse().unwrap();
        core.handle_media(t0, wall(), phone_port, phone_rtp, &rtp(1, 8));
        let to_caller = core.poll_media_transmit().expect("early media forwarded");
        assert_eq!(to_caller.from_port, caller_port);
        assert_eq!(to_caller.to, "192.0.2.7:40000".parse().unwrap());
        let packet = sihai_media::RtpPacket::parse(&to_caller.payload).unwrap();
        assert_eq!(packet.payload_type(), 0);
    }

    #[test]
    fn a_re_invite_on_an_anchored_call_keeps_the_media_on_the_relay() {
        let mut core = anchored_core();
        let t0 = Instant::now();
        core.handle_received(t0, wall(), call_with_offer(), udp_peer());
        let leg = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
        let offered_to_phone = leg.body();
        phone_says(&mut core, t0, &leg, 200, "ph1", Some(PHONE_ANSWER));
        let sent = parsed(&drain(&mut core));
        let ok = sent
            .iter()
            .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
            .unwrap()
            .1
            .clone();
        let caller_tag = ok.to().unwrap().tag().unwrap().to_string();
        // The carrier puts the call on hold with its own addresses.
        let hold = OFFER.replace("a=fmtp:101 0-15\r\n", "a=fmtp:101 0-15\r\na=sendonly\r\n");
        let reinvite = format!(
            "INVITE sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKreinv\r\n\
             From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>;tag={caller_tag}\r\n\
             Call-ID: call-1@carrier\r\nCSeq: 2 INVITE\r\nContact: <sip:13800138000@192.0.2.7:5062>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold}",
            hold.len()
        );
        core.handle_received(t0, wall(), Bytes::from(reinvite), udp_peer());
        let sent = parsed(&drain(&mut core));
        let to_phone = requests_to_phones(&sent, Method::Invite).remove(0);
        assert_eq!(
            to_phone.body(),
            offered_to_phone,
            "the phone sees the relay, never the carrier's address"
        );
        phone_says(&mut core, t0, &to_phone, 200, "ph1", Some(PHONE_ANSWER));
        let sent = parsed(&drain(&mut core));
        let answer = sent
            .iter()
            .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
            .expect("the re-INVITE is answered")
            .1
            .clone();
        assert_eq!(
            answer.body(),
            ok.body(),
            "the carrier sees the relay, not the phone"
        );
    }

    // ------------------------------------------------------------ voice menus

    /// Acme's switchboard: a menu whose "1" rings sales, "2" service, "0" collects an
    /// extension (8001 rings the desk); two failures take the default, sales.
    const MENU_CONFIG: &str = r##"
[[number]]
number = "4007654321"
enterprise = "acme"
status = "active"
plan = "switchboard"
[[plan]]
name = "switchboard"
enterprise = "acme"
group = "sales"
menu = "acme-menu"
hunt_timeout_s = 30
[[group]]
name = "service"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000003", ring_timeout_s = 10 }]
[[group]]
name = "desk"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000004", ring_timeout_s = 10 }]
[[extension]]
enterprise = "acme"
number = "8001"
group = "desk"
[[prompt]]
name = "welcome"
file = "welcome.wav"
[[prompt]]
name = "menu"
file = "menu.wav"
[[prompt]]
name = "invalid"
file = "invalid.wav"
[[prompt]]
name = "dial"
file = "dial.wav"
[[menu]]
name = "acme-menu"
enterprise = "acme"
welcome = "welcome"
root = "main"
[[menu.node]]
name = "main"
prompt = "menu"
timeout = "1s"
retries = 2
invalid = "invalid"
default = { group = "sales" }
[menu.node.options]
"1" = { group = "sales" }
"2" = { group = "service" }
"0" = { extension = { prompt = "dial", max_digits = 4, terminator = "#" } }
"#" = "hangup"
"##;

    /// 100 ms prompts of one constant sample each, so a packet tells which one plays.
    const PROMPT_LEVELS: [(&str, i16); 4] = [
        ("welcome", 1000),
        ("menu", 2000),
        ("invalid", 3000),
        ("dial", 4000),
    ];

    fn menu_core() -> Core {
        let mut core = anchored_core_with(&format!("{CONFIG}{MENU_CONFIG}"));
        let prompts = PROMPT_LEVELS
            .iter()
            .map(|&(name, level)| (name.to_string(), sihai_media::Prompt::new(&[level; 800])))
            .collect();
        core.set_prompts(Arc::new(prompts));
        core
    }

    /// The offered call, to the switchboard's number.
    fn menu_call() -> Bytes {
        let text = String::from_utf8(call_with_offer().to_vec()).unwrap();
        Bytes::from(text.replace("4001234567", "4007654321"))
    }

    /// Which prompt a packet to the caller carries (by its first sample), if any.
    fn prompt_of(payload: &[u8]) -> Option<&'static str> {
        let packet = sihai_media::RtpPacket::parse(payload).ok()?;
        let sample = sihai_media::Law::Ulaw.decode(*packet.payload().first()?);
        PROMPT_LEVELS
            .iter()
            .find(|(_, level)| (i32::from(sample) - i32::from(*level)).abs() < 200)
            .map(|(name, _)| *name)
    }

    /// Runs the clock for `ms` in 20 ms steps; returns the prompts heard, each once per
    /// stretch of packets, and the signalling sent meanwhile.
    fn listen(
        core: &mut Core,
        now: &mut Instant,
        ms: u64,
        heard: &mut Vec<&'static str>,
    ) -> Vec<(Peer, Message)> {
        let mut sent = Vec::new();
        for _ in 0..ms / 20 {
            *now += Duration::from_millis(20);
            core.handle_timeout(*now, wall());
            sent.extend(parsed(&drain(core)));
            while let Some(t) = core.poll_media_transmit() {
                if let Some(name) = prompt_of(&t.payload)
                    && heard.last() != Some(&name)
                {
                    heard.push(name);
                }
            }
        }
        sent
    }

    /// An RFC 4733 event for `key` from the caller, three packets, the last with End.
    fn press(core: &mut Core, now: Instant, caller_port: u16, seq: &mut u16, key: char) {
        let event = match key {
            '0'..='9' => key as u8 - b'0',
            '*' => 10,
            _ => 11,
        };
        let caller_rtp: std::net::SocketAddr = "192.0.2.7:40000".parse().unwrap();
        for (i, end) in [(0u16, false), (1, false), (2, true)] {
            *seq += 1;
            let fields = sihai_media::RtpFields {
                marker: i == 0,
                payload_type: 101,
                sequence: *seq,
                timestamp: u32::from(*seq) * 1000,
                ssrc: 0xCA11,
            };
            let payload = [
                event,
                if end { 0x80 } else { 0 } | 10,
                0,
                (160 * (i + 1)) as u8,
            ];
            let mut packet = Vec::new();
            sihai_media::write_rtp_to_vec(&mut packet, &fields, &payload).unwrap();
            core.handle_media(now, wall(), caller_port, caller_rtp, &packet);
        }
    }

    /// The caller's INFO with `signal` (application/dtmf-relay).
    fn info(cseq: u32, caller_tag: &str, signal: char) -> Bytes {
        let body = format!("Signal={signal}\r\nDuration=160\r\n");
        caller_request(
            "INFO",
            cseq,
            caller_tag,
            "4007654321",
            Some(("application/dtmf-relay", &body)),
        )
    }

    /// A menu call answered: the 200's To tag, the caller's relay port, and the clock.
    fn answered_by_menu(core: &mut Core) -> (String, u16, Instant) {
        let t0 = Instant::now();
        core.handle_received(t0, wall(), menu_call(), udp_peer());
        let sent = parsed(&drain(core));
        assert!(
            requests_to_phones(&sent, Method::Invite).is_empty(),
            "no phone rings before the menu chose"
        );
        let ok = sent
            .iter()
            .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
            .expect("the menu answers the caller")
            .1
            .clone();
        let caller_port = audio_of(&ok).port;
        let tag = ok.to().unwrap().tag().unwrap().to_string();
        let ack = format!(
            "ACK sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKack1\r\n\
             From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4007654321@127.0.0.1>;tag={tag}\r\n\
             Call-ID: call-1@carrier\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        core.handle_received(t0, wall(), Bytes::from(ack), udp_peer());
        (tag, caller_port, t0)
    }

    fn phone_number_of(invite: &Message) -> String {
        invite
            .request_uri()
            .unwrap()
            .split(['@', ':'])
            .nth(1)
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_menu_answers_plays_and_key_2_rings_the_service_group() {
        let mut core = menu_core();
        let (tag, caller_port, mut now) = answered_by_menu(&mut core);
        let mut heard = Vec::new();
        listen(&mut core, &mut now, 60, &mut heard);
        assert_eq!(heard, ["welcome"], "the welcome plays first");
        listen(&mut core, &mut now, 120, &mut heard);
        assert_eq!(heard, ["welcome", "menu"]);

        let mut seq = 100;
        press(&mut core, now, caller_port, &mut seq, '2');
        let sent = listen(&mut core, &mut now, 40, &mut heard);
        let invites = requests_to_phones(&sent, Method::Invite);
        assert_eq!(invites.len(), 1, "one phone of the service group rings");
        assert_eq!(phone_number_of(&invites[0]), "13900000003");
        assert!(
            statuses_to_caller(&sent).is_empty(),
            "the caller was answered already: no 18x, no second 200"
        );

        // The phone answers: bridged, and the CDR names the path.
        phone_says(&mut core, now, &invites[0], 200, "svc", Some(PHONE_ANSWER));
        let sent = parsed(&drain(&mut core));
        assert!(statuses_to_caller(&sent).is_empty());
        assert_eq!(core.active_calls(), 1);
        core.handle_received(now, wall(), from_caller_to_menu("BYE", 2, &tag), udp_peer());
        let sent = parsed(&drain(&mut core));
        let phone_bye = requests_to_phones(&sent, Method::Bye).remove(0);
        phone_says(&mut core, now, &phone_bye, 200, "svc", None);
        let (cdr, _) = core.poll_record().expect("a CDR");
        assert_eq!(cdr.outcome, sihai_store::Outcome::Answered);
        assert_eq!(cdr.answered_by.as_deref(), Some("13900000003"));
        assert_eq!(cdr.menu_path.as_deref(), Some("2"));
    }

    #[test]
    fn extension_8001_by_info_rings_its_phone_and_the_cdr_has_the_path() {
        let mut core = menu_core();
        let (tag, _caller_port, mut now) = answered_by_menu(&mut core);
        let mut heard = Vec::new();
        let mut sent = Vec::new();
        for (cseq, key) in [(2, '0'), (3, '8'), (4, '0'), (5, '0'), (6, '1'), (7, '#')] {
            core.handle_received(now, wall(), info(cseq, &tag, key), udp_peer());
            let answered = parsed(&drain(&mut core));
            assert_eq!(
                statuses_to_caller(&answered),
                [200],
                "INFO {key} is answered"
            );
            sent.extend(answered);
            sent.extend(listen(&mut core, &mut now, 40, &mut heard));
        }
        assert!(heard.contains(&"dial"), "the dial prompt plays: {heard:?}");
        let invites = requests_to_phones(&sent, Method::Invite);
        assert_eq!(invites.len(), 1, "the extension's phone rings");
        assert_eq!(phone_number_of(&invites[0]), "13900000004");
        // Hang up while the desk rings: it is cancelled, the CDR keeps the path.
        phone_says(&mut core, now, &invites[0], 180, "desk", None);
        drain(&mut core);
        core.handle_received(now, wall(), from_caller_to_menu("BYE", 8, &tag), udp_peer());
        let sent = parsed(&drain(&mut core));
        assert_eq!(statuses_to_caller(&sent), [200]);
        assert_eq!(
            requests_to_phones(&sent, Method::Cancel).len(),
            1,
            "the ringing desk is cancelled"
        );
        let (cdr, _) = core.poll_record().expect("a CDR");
        assert_eq!(cdr.menu_path.as_deref(), Some("0>8001"));
        assert_eq!(cdr.outcome, sihai_store::Outcome::Cancelled);
        assert_eq!(cdr.attempts[0].phone, "13900000004");
    }

    fn from_caller_to_menu(method: &str, cseq: u32, caller_tag: &str) -> Bytes {
        caller_request(method, cseq, caller_tag, "4007654321", None)
    }

    #[test]
    fn an_invalid_key_replays_the_menu_then_silence_takes_the_default() {
        let mut core = menu_core();
        let (tag, caller_port, mut now) = answered_by_menu(&mut core);
        let mut heard = Vec::new();
        listen(&mut core, &mut now, 240, &mut heard);
        let mut seq = 100;
        press(&mut core, now, caller_port, &mut seq, '7');
        listen(&mut core, &mut now, 240, &mut heard);
        assert_eq!(
            heard,
            ["welcome", "menu", "invalid", "menu"],
            "an invalid key: invalid prompt, then the menu again"
        );
        // Nothing more: after the 1 s timeout the second failure takes the default (sales).
        let sent = listen(&mut core, &mut now, 1200, &mut heard);
        let invites = requests_to_phones(&sent, Method::Invite);
        assert_eq!(invites.len(), 1, "the default group rings: {heard:?}");
        assert_eq!(phone_number_of(&invites[0]), "13900000001");

        // Nobody answers (ring timeout 5 s, then the second phone's 20 s... the hunt
        // timeout of 30 s ends it): the caller, answered by the menu, gets a BYE.
        let mut bye = None;
        for _ in 0..40 {
            let sent = listen(&mut core, &mut now, 1000, &mut heard);
            for leg in requests_to_phones(&sent, Method::Invite) {
                phone_says(&mut core, now, &leg, 180, "r", None);
            }
            for cancel in requests_to_phones(&sent, Method::Cancel) {
                phone_says(&mut core, now, &cancel, 200, "r", None);
            }
            if let Some((_, m)) = sent
                .iter()
                .find(|(p, m)| *p == udp_peer() && m.method() == Some(Method::Bye))
            {
                bye = Some(m.clone());
                break;
            }
        }
        let bye = bye.expect("the caller is hung up on when nobody answers");
        assert_eq!(bye.to().unwrap().tag(), Some("carrier"));
        assert_eq!(bye.from().unwrap().tag(), Some(tag.as_str()));
        let (cdr, _) = core.poll_record().expect("a CDR");
        assert_eq!(cdr.outcome, sihai_store::Outcome::NoAnswer);
        assert_eq!(
            cdr.menu_path.as_deref(),
            Some(""),
            "no valid key: the menu's default, not a choice"
        );
        assert_eq!(
            core.media_ports_available(),
            Some(5),
            "ports back in the pool"
        );
    }

    /// Announcements instead of bare error codes.
    mod announcements;
    /// Prepaid billing: admission, cut-off, menu time.
    mod billing;
    /// 来电弹屏: the CRM lookup, its timeout and cache.
    mod crm;
    /// Graceful shutdown: the drain, ending the calls left, the last answers.
    mod shutdown;
}
