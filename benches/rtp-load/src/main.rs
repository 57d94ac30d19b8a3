//! `sihai-rtp-load`: the load generator of the performance harness's media run.
//!
//! It plays both the carrier and the phones against a running sihai whose RTP relay is
//! on, all on 127.0.0.1: places N calls to a 400 number (INVITE with a PCMU +
//! telephone-event offer) at a bounded rate, answers each INVITE sihai sends the phones
//! with 180 and 200, then streams G.711 both ways for every call (160 bytes every
//! 20 ms per direction) through the relay, hangs every call up and checks that the
//! relay let go of its ports.
//!
//! Standard output gets JSON lines: `{"event":"measure_start"}` and
//! `{"event":"measure_end"}` as the measured window opens and closes (so that a harness
//! can read the relay's CPU around it), then one `{"event":"result",...}` line.
//! A human summary goes to standard error. The exit status is 1 when calls failed to
//! set up, did not end, or left relay ports bound; 2 for a usage or socket error.

mod caller;
mod phone;
mod rtp;
mod sip;
mod stats;

use std::collections::HashSet;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;

use crate::caller::Caller;
use crate::phone::{Phone, PhoneLegs};
use crate::rtp::{Direction, Plan, ReceiveReport};

/// Socket buffers for the RTP sockets: a receiving thread that loses the CPU for a few
/// milliseconds must not turn into packet loss blamed on the relay. The kernel caps it
/// at net.core.rmem_max / wmem_max.
const RTP_SOCKET_BUFFER: usize = 8 << 20;
/// How long the receivers keep listening after the last packet was sent: anything
/// later is counted as lost.
const DRAIN: Duration = Duration::from_millis(500);
/// How long the relay may take to close a call's ports after its BYE was answered.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(
    name = "sihai-rtp-load",
    about = "Bridged calls through sihai's RTP relay with G.711 both ways: relayed packets per second, loss, delay and added jitter",
    after_help = "Everything runs on 127.0.0.1. sihai must run with [media] relay = true and a trunk \
                  whose gateway is sip:{number}@127.0.0.1:PHONE_PORT, with enough phone capacity \
                  for --calls and 4 relay ports per call."
)]
struct Cli {
    /// sihai's SIP address over UDP (127.0.0.1 only).
    #[arg(long, default_value = "127.0.0.1:5060")]
    sihai: SocketAddr,
    /// The UDP port the phones listen on: the port of sihai's trunk gateway.
    #[arg(long)]
    phone_port: u16,
    /// The 400 number to call.
    #[arg(long, default_value = "4001234567")]
    number: String,
    /// Bridged calls, each streaming both ways.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// Seconds of streaming that are measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of streaming before the measured window (not counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Calls placed (and hung up) per second.
    #[arg(long, default_value_t = 500.0)]
    setup_rate: f64,
    /// Seconds allowed for every call to be answered.
    #[arg(long, default_value_t = 30.0)]
    setup_timeout: f64,
    /// Seconds allowed for every call to be hung up.
    #[arg(long, default_value_t = 30.0)]
    hangup_timeout: f64,
    /// RTP sockets on each side (caller, phone), shared round robin by the calls; one
    /// receiving thread each.
    #[arg(long, default_value_t = 1)]
    sockets_per_side: usize,
}

impl Cli {
    fn check(&self) -> Result<()> {
        ensure!(
            self.sihai.ip() == Ipv4Addr::LOCALHOST,
            "--sihai must be on 127.0.0.1 (got {})",
            self.sihai
        );
        ensure!(
            (1..=100_000).contains(&self.calls),
            "--calls must be 1 to 100,000"
        );
        for (name, value, most) in [
            ("--duration", self.duration, 3600.0),
            ("--setup-rate", self.setup_rate, 100_000.0),
            ("--setup-timeout", self.setup_timeout, 3600.0),
            ("--hangup-timeout", self.hangup_timeout, 3600.0),
        ] {
            ensure!(
                value > 0.0 && value <= most,
                "{name} must be above 0 and at most {most}"
            );
        }
        ensure!(
            (0.0..=600.0).contains(&self.warmup),
            "--warmup must be 0 to 600 s"
        );
        ensure!(
            (1..=64).contains(&self.sockets_per_side),
            "--sockets-per-side must be 1 to 64"
        );
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(result) => {
            println!("{}", result.json());
            eprintln!("{}", result.summary());
            if result.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("rtp-load: error: {}", result.problems.join("; "));
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("rtp-load: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// A marker line for the harness, flushed at once: it reads the relay's CPU time
/// when it sees it.
fn mark(event: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{{\"event\":\"{event}\"}}");
    let _ = out.flush();
}

fn rtp_socket() -> Result<Arc<UdpSocket>> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding an RTP socket")?;
    let tuned = socket2::SockRef::from(&socket);
    tuned
        .set_recv_buffer_size(RTP_SOCKET_BUFFER)
        .context("SO_RCVBUF on an RTP socket")?;
    tuned
        .set_send_buffer_size(RTP_SOCKET_BUFFER)
        .context("SO_SNDBUF on an RTP socket")?;
    // The receivers look at their stop flag at least this often.
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .context("RTP socket read timeout")?;
    Ok(Arc::new(socket))
}

fn run(cli: &Cli) -> Result<RunResult> {
    cli.check()?;
    let phone_sip = UdpSocket::bind((Ipv4Addr::LOCALHOST, cli.phone_port))
        .with_context(|| format!("binding the phones' SIP port 127.0.0.1:{}", cli.phone_port))?;
    let caller_sip = UdpSocket::bind("127.0.0.1:0").context("binding the caller's SIP socket")?;
    let caller_sockets = (0..cli.sockets_per_side)
        .map(|_| rtp_socket())
        .collect::<Result<Vec<_>>>()?;
    let phone_sockets = (0..cli.sockets_per_side)
        .map(|_| rtp_socket())
        .collect::<Result<Vec<_>>>()?;
    let addresses = |sockets: &[Arc<UdpSocket>]| -> Result<Vec<SocketAddr>> {
        sockets
            .iter()
            .map(|s| s.local_addr().context("RTP socket address"))
            .collect()
    };

    let legs = Arc::new(Mutex::new(PhoneLegs {
        relay_for_phone: vec![None; cli.calls],
        ..PhoneLegs::default()
    }));
    let stop_phone = Arc::new(AtomicBool::new(false));
    let phone = Phone {
        socket: phone_sip,
        calls: cli.calls,
        rtp: addresses(&phone_sockets)?,
        shared: Arc::clone(&legs),
        stop: Arc::clone(&stop_phone),
    };
    let phone_thread = std::thread::Builder::new()
        .name("phones".into())
        .spawn(move || phone.run())
        .context("starting the phones' thread")?;

    let mut result = RunResult {
        calls: cli.calls,
        duration_s: cli.duration,
        warmup_s: cli.warmup,
        ..RunResult::default()
    };
    let outcome = (|| -> Result<()> {
        let mut caller = Caller::new(
            caller_sip,
            cli.sihai,
            cli.number.clone(),
            cli.calls,
            addresses(&caller_sockets)?,
        )?;
        eprintln!(
            "rtp-load: placing {} calls to {} via {} at {}/s",
            cli.calls, cli.number, cli.sihai, cli.setup_rate
        );
        let setup = caller.set_up(
            cli.setup_rate,
            Instant::now() + Duration::from_secs_f64(cli.setup_timeout),
        );
        result.set_up = setup.established;
        result.setup_s = setup.seconds;
        result.setup_ms_p50 = setup.setup_ms_p50;
        result.setup_ms_p99 = setup.setup_ms_p99;
        let hangup_rate = cli.setup_rate;
        let hangup_deadline = || Instant::now() + Duration::from_secs_f64(cli.hangup_timeout);
        if setup.failed > 0 {
            let reasons: Vec<String> = setup
                .failures
                .iter()
                .map(|(why, n)| format!("{n} × {why}"))
                .collect();
            result.problems.push(format!(
                "{} of {} calls failed to set up: {}",
                setup.failed,
                cli.calls,
                reasons.join(", ")
            ));
            caller.hang_up(hangup_rate, hangup_deadline());
            return Ok(());
        }

        let relay_for_caller = caller.relay_for_caller();
        let relay_for_phone = match legs.lock() {
            Ok(legs) => legs.relay_for_phone.clone(),
            Err(_) => bail!("the phones' thread panicked"),
        };
        let mut missing = 0;
        let (mut to_caller, mut to_phone) = (Vec::new(), Vec::new());
        for (c, p) in relay_for_caller.iter().zip(&relay_for_phone) {
            match (c, p) {
                (Some(c), Some(p)) => {
                    to_caller.push(*c);
                    to_phone.push(*p);
                }
                _ => missing += 1,
            }
        }
        if missing > 0 {
            result.problems.push(format!(
                "{missing} answered calls without the relay's address for both legs"
            ));
            caller.hang_up(hangup_rate, hangup_deadline());
            return Ok(());
        }
        let ours: HashSet<SocketAddr> = addresses(&caller_sockets)?
            .into_iter()
            .chain(addresses(&phone_sockets)?)
            .collect();
        if to_caller.iter().chain(&to_phone).any(|a| ours.contains(a)) {
            // The SDP passed through end to end: sihai did not anchor the media, and
            // the audio would flow between our own sockets without touching it.
            result.problems.push(
                "sihai passed the SDP through instead of anchoring the media: is [media] relay = true, and did the relay start (see its log)?"
                    .to_owned(),
            );
            caller.hang_up(hangup_rate, hangup_deadline());
            return Ok(());
        }
        let relay_ports: Vec<u16> = to_caller
            .iter()
            .chain(&to_phone)
            .map(|a| a.port())
            .collect();
        if let Some(elsewhere) = to_caller
            .iter()
            .chain(&to_phone)
            .find(|a| a.ip() != Ipv4Addr::LOCALHOST)
        {
            result.problems.push(format!(
                "the relay advertised {elsewhere}, not 127.0.0.1: set [media] address = \"127.0.0.1\""
            ));
            caller.hang_up(hangup_rate, hangup_deadline());
            return Ok(());
        }
        for socket in caller_sockets.iter().chain(&phone_sockets) {
            result.ringback_drained += rtp::drain(socket).context("draining an RTP socket")?;
        }

        let relay_port_set: HashSet<u16> = relay_ports.iter().copied().collect();
        let own_port_set: HashSet<u16> = ours.iter().map(|a| a.port()).collect();
        let drops_before = (kernel_drops(&relay_port_set), kernel_drops(&own_port_set));

        let epoch = Instant::now();
        // A little room for the threads to start before the first packet is due.
        let stream_start_ns = 50_000_000;
        let window_start_ns = stream_start_ns + (cli.warmup * 1e9) as u64;
        let window_end_ns = window_start_ns + (cli.duration * 1e9) as u64;
        let ticks =
            ((window_end_ns - stream_start_ns) as f64 / rtp::PTIME.as_nanos() as f64).ceil() as u32;
        let plan = Plan {
            epoch,
            stream_start_ns,
            ticks,
            window_start_ns,
            window_end_ns,
            caller_sockets: caller_sockets.clone(),
            phone_sockets: phone_sockets.clone(),
            relay_for_caller: to_caller,
            relay_for_phone: to_phone,
        };
        eprintln!(
            "rtp-load: {} calls up in {:.1} s; streaming {:.0} packets/s through the relay for {} s ({} s warm-up)",
            setup.established,
            setup.seconds,
            setup.established as f64 * 2.0 / rtp::PTIME.as_secs_f64(),
            cli.duration,
            cli.warmup
        );
        let stop_receivers = AtomicBool::new(false);
        let (sent, received) = std::thread::scope(|scope| -> Result<_> {
            let mut receivers = Vec::new();
            for (sockets, direction) in [
                (&plan.phone_sockets, Direction::CallerToPhone),
                (&plan.caller_sockets, Direction::PhoneToCaller),
            ] {
                for socket in sockets {
                    let (plan, stop) = (&plan, &stop_receivers);
                    receivers.push(
                        std::thread::Builder::new()
                            .name("rtp-receive".into())
                            .spawn_scoped(scope, move || {
                                rtp::receive(plan, socket, direction, stop)
                            })
                            .context("starting a receiving thread")?,
                    );
                }
            }
            let sender = std::thread::Builder::new()
                .name("rtp-send".into())
                .spawn_scoped(scope, || rtp::send(&plan))
                .context("starting the sending thread")?;
            caller.serve_until(plan.at(window_start_ns));
            mark("measure_start");
            caller.serve_until(plan.at(window_end_ns));
            mark("measure_end");
            let sent = sender.join().ok();
            caller.serve_until(Instant::now() + DRAIN);
            stop_receivers.store(true, Ordering::Relaxed);
            let received: Vec<ReceiveReport> = receivers
                .into_iter()
                .filter_map(|r| r.join().ok())
                .collect();
            Ok((sent, received))
        })?;
        let sent = sent.context("the sending thread panicked")?;
        ensure!(
            received.len() == 2 * cli.sockets_per_side,
            "a receiving thread panicked"
        );
        result.add_streaming(&sent, received);
        let since = |before: Option<u64>, now: Option<u64>| Some(now?.saturating_sub(before?));
        result.kernel_drops_at_relay = since(drops_before.0, kernel_drops(&relay_port_set));
        result.kernel_drops_at_generator = since(drops_before.1, kernel_drops(&own_port_set));

        eprintln!("rtp-load: hanging up");
        let hangup = caller.hang_up(hangup_rate, hangup_deadline());
        result.hung_up = hangup.ended;
        if hangup.ended_early > 0 {
            result.problems.push(format!(
                "sihai ended {} calls itself while they streamed",
                hangup.ended_early
            ));
        }
        if hangup.not_ended > 0 {
            result.problems.push(format!(
                "{} calls did not end within {} s",
                hangup.not_ended, cli.hangup_timeout
            ));
        }
        let still_bound = wait_for_release(&relay_ports, RELEASE_WAIT);
        result.relay_ports_checked = relay_ports.len() * 2;
        result.relay_ports_still_bound = still_bound;
        if still_bound > 0 {
            result.problems.push(format!(
                "{still_bound} relay ports still bound {} s after the calls ended",
                RELEASE_WAIT.as_secs()
            ));
        }
        result.stray_sip = caller.stray;
        Ok(())
    })();
    stop_phone.store(true, Ordering::Relaxed);
    let _ = phone_thread.join();
    outcome?;
    if let Ok(legs) = legs.lock() {
        result.phone_invites = legs.invites;
        result.phone_acks = legs.acks;
        result.phone_byes = legs.byes;
        if legs.refused + legs.malformed + legs.unacknowledged > 0 {
            result.problems.push(format!(
                "the phones refused {} INVITEs, could not read {} datagrams and gave up on {} unacknowledged 200s",
                legs.refused, legs.malformed, legs.unacknowledged
            ));
        }
    }
    Ok(result)
}

/// The kernel's count of datagrams dropped at the IPv4 UDP sockets bound to `ports`
/// on 127.0.0.1 (a full receive buffer), from /proc/net/udp; `None` where that cannot
/// be read. Tells loss in the kernel apart from loss inside the relay.
fn kernel_drops(ports: &std::collections::HashSet<u16>) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let mut drops = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(dropped)) = (fields.get(1), fields.last()) else {
            continue;
        };
        let Some((ip, port)) = local.split_once(':') else {
            continue;
        };
        // 127.0.0.1 in the kernel's byte order, as /proc prints it.
        if ip != "0100007F" {
            continue;
        }
        let (Ok(port), Ok(dropped)) = (u16::from_str_radix(port, 16), dropped.parse::<u64>())
        else {
            continue;
        };
        if ports.contains(&port) {
            drops += dropped;
        }
    }
    Some(drops)
}

/// Waits until every relay port (RTP and the RTCP port above it) can be bound again,
/// i.e. sihai closed its socket; returns how many are still bound after `within`.
fn wait_for_release(rtp_ports: &[u16], within: Duration) -> usize {
    let mut bound: Vec<u16> = rtp_ports
        .iter()
        .flat_map(|&p| [p, p.saturating_add(1)])
        .collect();
    let deadline = Instant::now() + within;
    loop {
        bound.retain(|&port| UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_err());
        if bound.is_empty() || Instant::now() >= deadline {
            return bound.len();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Debug, Default)]
struct RunResult {
    calls: usize,
    duration_s: f64,
    warmup_s: f64,
    set_up: usize,
    setup_s: f64,
    setup_ms_p50: f64,
    setup_ms_p99: f64,
    sent: [u64; 2],
    received: [u64; 2],
    received_in_window: [u64; 2],
    send_errors: u64,
    sender_max_late_ms: f64,
    delay_ms_p50: f64,
    delay_ms_p99: f64,
    delay_ms_max: f64,
    jitter: stats::JitterSummary,
    misrouted: u64,
    foreign: u64,
    /// Datagrams the kernel dropped at the relay's sockets and at ours during the
    /// streaming (full receive buffers); the rest of the loss happened inside sihai.
    kernel_drops_at_relay: Option<u64>,
    kernel_drops_at_generator: Option<u64>,
    ringback_drained: u64,
    hung_up: usize,
    relay_ports_checked: usize,
    relay_ports_still_bound: usize,
    phone_invites: u64,
    phone_acks: u64,
    phone_byes: u64,
    stray_sip: u64,
    streamed: bool,
    problems: Vec<String>,
}

impl RunResult {
    fn add_streaming(&mut self, sent: &rtp::SendReport, received: Vec<ReceiveReport>) {
        self.streamed = true;
        self.sent = sent.sent;
        self.send_errors = sent.send_errors;
        self.sender_max_late_ms = sent.max_late_ms;
        let mut delays = Vec::new();
        let mut streams = Vec::new();
        for report in received {
            for d in 0..2 {
                self.received[d] += report.received[d];
                self.received_in_window[d] += report.received_in_window[d];
            }
            self.misrouted += report.misrouted;
            self.foreign += report.foreign;
            delays.extend(report.delays_us);
            streams.extend(
                report
                    .streams
                    .into_iter()
                    .filter(|s| s.added.mean_ms().is_some()),
            );
        }
        delays.sort_unstable();
        let ms = |us: Option<u32>| us.map_or(0.0, |us| f64::from(us) / 1000.0);
        self.delay_ms_p50 = ms(stats::percentile(&delays, 0.50));
        self.delay_ms_p99 = ms(stats::percentile(&delays, 0.99));
        self.delay_ms_max = ms(delays.last().copied());
        self.jitter = stats::summarize(&streams);
        if self.misrouted > 0 {
            self.problems.push(format!(
                "{} packets arrived from the wrong relay port or on the wrong side",
                self.misrouted
            ));
        }
    }

    fn loss_pct(&self) -> f64 {
        let sent: u64 = self.sent.iter().sum();
        let received: u64 = self.received.iter().sum();
        if sent == 0 {
            return 0.0;
        }
        100.0 * sent.saturating_sub(received) as f64 / sent as f64
    }

    fn relayed_pps(&self) -> f64 {
        self.received_in_window.iter().sum::<u64>() as f64 / self.duration_s
    }

    fn json(&self) -> String {
        let direction = |d: usize| {
            format!(
                "{{\"sent\":{},\"received\":{},\"received_in_window\":{},\"pps\":{:.1}}}",
                self.sent[d],
                self.received[d],
                self.received_in_window[d],
                self.received_in_window[d] as f64 / self.duration_s
            )
        };
        let problems: Vec<String> = self.problems.iter().map(|p| json_string(p)).collect();
        format!(
            concat!(
                "{{\"event\":\"result\",\"ok\":{ok},\"calls\":{calls},\"set_up\":{set_up},",
                "\"setup_s\":{setup_s:.3},\"setup_ms_p50\":{sp50:.2},\"setup_ms_p99\":{sp99:.2},",
                "\"streamed\":{streamed},\"duration_s\":{duration},\"warmup_s\":{warmup},",
                "\"caller_to_phone\":{c2p},\"phone_to_caller\":{p2c},",
                "\"relayed_pps\":{pps:.1},\"loss_pct\":{loss:.4},",
                "\"delay_ms_p50\":{d50:.3},\"delay_ms_p99\":{d99:.3},\"delay_ms_max\":{dmax:.3},",
                "\"jitter_added_ms\":{jadded:.4},\"jitter_added_max_stream_ms\":{jmax:.4},",
                "\"jitter_at_receiver_ms\":{jrecv:.4},\"jitter_sender_ms\":{jsend:.4},",
                "\"jitter_streams\":{jstreams},\"sender_max_late_ms\":{late:.3},",
                "\"send_errors\":{send_errors},\"misrouted\":{misrouted},\"foreign\":{foreign},",
                "\"kernel_drops_at_relay\":{kdrelay},\"kernel_drops_at_generator\":{kdgen},",
                "\"ringback_drained\":{ringback},\"hung_up\":{hung_up},",
                "\"relay_ports_checked\":{ports},\"relay_ports_still_bound\":{bound},",
                "\"phone_invites\":{invites},\"phone_acks\":{acks},\"phone_byes\":{byes},",
                "\"stray_sip\":{stray},\"problems\":[{problems}]}}"
            ),
            ok = self.problems.is_empty(),
            calls = self.calls,
            set_up = self.set_up,
            setup_s = self.setup_s,
            sp50 = self.setup_ms_p50,
            sp99 = self.setup_ms_p99,
            streamed = self.streamed,
            duration = self.duration_s,
            warmup = self.warmup_s,
            c2p = direction(Direction::CallerToPhone as usize),
            p2c = direction(Direction::PhoneToCaller as usize),
            pps = self.relayed_pps(),
            loss = self.loss_pct(),
            d50 = self.delay_ms_p50,
            d99 = self.delay_ms_p99,
            dmax = self.delay_ms_max,
            jadded = self.jitter.added_ms,
            jmax = self.jitter.added_max_stream_ms,
            jrecv = self.jitter.at_receiver_ms,
            jsend = self.jitter.sender_ms,
            jstreams = self.jitter.streams,
            late = self.sender_max_late_ms,
            send_errors = self.send_errors,
            misrouted = self.misrouted,
            foreign = self.foreign,
            kdrelay = json_count(self.kernel_drops_at_relay),
            kdgen = json_count(self.kernel_drops_at_generator),
            ringback = self.ringback_drained,
            hung_up = self.hung_up,
            ports = self.relay_ports_checked,
            bound = self.relay_ports_still_bound,
            invites = self.phone_invites,
            acks = self.phone_acks,
            byes = self.phone_byes,
            stray = self.stray_sip,
            problems = problems.join(","),
        )
    }

    fn summary(&self) -> String {
        let c2p = Direction::CallerToPhone as usize;
        let p2c = Direction::PhoneToCaller as usize;
        let mut text = format!(
            "rtp-load: {} of {} calls set up in {:.1} s (setup p50 {:.1} ms, p99 {:.1} ms)\n",
            self.set_up, self.calls, self.setup_s, self.setup_ms_p50, self.setup_ms_p99
        );
        if self.streamed {
            text += &format!(
                "  caller → phone: sent {}, received {}; phone → caller: sent {}, received {}; loss {:.3} %\n\
                 \x20 relayed {:.0} packets/s over the {} s window\n\
                 \x20 one-way delay through the relay: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms\n\
                 \x20 jitter (RFC 3550, mean over {} streams): added by the relay path {:.3} ms \
                 (worst stream {:.3}), at the receiver {:.3} ms, the sender's own pacing {:.3} ms \
                 (latest slot {:.2} ms late)\n\
                 \x20 dropped by the kernel (full socket buffers): {} at the relay's sockets, {} at ours\n\
                 \x20 hung up {}; relay ports still bound afterwards: {} of {}",
                self.sent[c2p],
                self.received[c2p],
                self.sent[p2c],
                self.received[p2c],
                self.loss_pct(),
                self.relayed_pps(),
                self.duration_s,
                self.delay_ms_p50,
                self.delay_ms_p99,
                self.delay_ms_max,
                self.jitter.streams,
                self.jitter.added_ms,
                self.jitter.added_max_stream_ms,
                self.jitter.at_receiver_ms,
                self.jitter.sender_ms,
                self.sender_max_late_ms,
                json_count(self.kernel_drops_at_relay),
                json_count(self.kernel_drops_at_generator),
                self.hung_up,
                self.relay_ports_still_bound,
                self.relay_ports_checked,
            );
        }
        text
    }
}

/// A count, or JSON's null where it could not be read.
fn json_count(count: Option<u64>) -> String {
    count.map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a \"b\"\\\n"), "\"a \\\"b\\\"\\\\\\u000a\"");
    }

    #[test]
    fn only_loopback() {
        let cli = Cli::parse_from([
            "sihai-rtp-load",
            "--sihai",
            "10.0.0.1:5060",
            "--phone-port",
            "5080",
        ]);
        assert!(cli.check().is_err());
    }
}
