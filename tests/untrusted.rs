//! Traffic from addresses that are no trunk, through the real daemon on loopback: the
//! trunk is 127.0.0.1 and the stranger 127.0.0.2. An untrusted INVITE draws one
//! stateless 403 or nothing (no 100, no retransmission, no transaction), and a flood of
//! them from another address neither fails the trunk's calls nor leaves memory behind.

mod support;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Daemon, free_port, repo_path, status_of};

const STRANGER: &str = "127.0.0.2";

/// 127.0.0.2 must be bindable (Linux routes all of 127.0.0.0/8 to loopback): a machine
/// where it is not fails these tests loudly rather than skipping them.
fn assert_stranger_usable() {
    if let Err(err) = UdpSocket::bind((STRANGER, 0)) {
        panic!("{STRANGER} is not usable on this machine's loopback: {err}");
    }
}

/// The trunk (127.0.0.1 only), number 4001234567 ringing the sipp on `phone_port`,
/// which plays three phones of 1,000 calls each (a slow moment must not make them busy).
fn routing(phone_port: u16) -> String {
    format!(
        r#"
[[trunk]]
name = "lab"
sources = ["127.0.0.1"]
gateway = "sip:{{number}}@127.0.0.1:{phone_port}"

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
group = "phones"

[[group]]
name = "phones"
enterprise = "acme"
strategy = "sequential"
phones = [
  {{ uri = "sip:13900000001@127.0.0.1:{phone_port}", capacity = 1000 }},
  {{ uri = "sip:13900000002@127.0.0.1:{phone_port}", capacity = 1000 }},
  {{ uri = "sip:13900000003@127.0.0.1:{phone_port}", capacity = 1000 }},
]
"#
    )
}

/// The generated configuration with `setting` added to the UDP listener.
fn udp_listener_with(setting: &'static str) -> impl FnOnce(String) -> String {
    move |text| {
        text.replacen(
            "[[sip.listen]]\ntransport = \"udp\"\n",
            &format!("[[sip.listen]]\ntransport = \"udp\"\n{setting}\n"),
            1,
        )
    }
}

fn invite_from(socket: &UdpSocket, daemon: &Daemon) -> Vec<u8> {
    let local = socket.local_addr().expect("local address");
    format!(
        "INVITE sip:4001234567@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKuntrusted1;rport\r\n\
         From: <sip:100@{local}>;tag=scan\r\n\
         To: <sip:4001234567@127.0.0.1:{port}>\r\n\
         Call-ID: untrusted-1\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{local}>\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        port = daemon.port
    )
    .into_bytes()
}

/// Every datagram that reaches `socket` within `window`.
fn collect(socket: &UdpSocket, window: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_535];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return got;
        }
        socket.set_read_timeout(Some(left)).expect("timeout");
        match socket.recv_from(&mut buf) {
            Ok((n, _)) => got.push(buf[..n].to_vec()),
            Err(_) => return got,
        }
    }
}

#[test]
fn an_untrusted_invite_draws_exactly_one_403_over_40_s() {
    assert_stranger_usable();
    let daemon = Daemon::start_with("", &routing(free_port()));
    let socket = UdpSocket::bind((STRANGER, 0)).expect("bind the stranger");
    socket
        .send_to(&invite_from(&socket, &daemon), daemon.addr())
        .expect("send");
    // Timer H is 64 * T1 = 32 s: a transaction would have retransmitted its 403 until then.
    let got = collect(&socket, Duration::from_secs(40));
    let statuses: Vec<Option<u16>> = got.iter().map(|d| status_of(d)).collect();
    assert_eq!(
        statuses,
        [Some(403)],
        "one response, no 100, no retransmission"
    );
    let log = daemon.stop();
    assert!(log.contains("untrusted_rejected: 1,"), "counted:\n{log}");
}

#[test]
fn a_listener_set_to_drop_answers_an_untrusted_invite_with_nothing() {
    assert_stranger_usable();
    let daemon = Daemon::start_edited(
        "",
        &routing(free_port()),
        udp_listener_with("untrusted = \"drop\""),
    );
    let socket = UdpSocket::bind((STRANGER, 0)).expect("bind the stranger");
    socket
        .send_to(&invite_from(&socket, &daemon), daemon.addr())
        .expect("send");
    let got = collect(&socket, Duration::from_secs(40));
    assert!(got.is_empty(), "nothing at all: {got:?}");
    let log = daemon.stop();
    assert!(log.contains("untrusted_dropped: 1,"), "counted:\n{log}");
}

/// Resident memory of process `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// CPU time (user + system) of process `pid`, from /proc/<pid>/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here. The
    // kernel reports them in USER_HZ, 100 on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A counter from the stats the daemon logs when it stops (`name: N,`).
fn counter(log: &str, name: &str) -> u64 {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("shutting down"))
        .unwrap_or_else(|| panic!("no shutdown line in:\n{log}"));
    let at = line
        .find(&format!("{name}: "))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    line[at + name.len() + 2..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number for {name} in {line}"))
}

/// A sipp process with its statistics file and output in a directory of its own,
/// without message traces (at these rates a trace would cost more than the calls);
/// killed if dropped.
struct Sipp {
    child: std::process::Child,
    dir: tempfile::TempDir,
    what: String,
}

impl Sipp {
    fn spawn(what: &str, scenario: &str, args: &[String]) -> Sipp {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new("sipp")
            .args(args)
            .arg("-sf")
            .arg(repo_path(&format!("tests/sipp/{scenario}")))
            .args(["-nostdin", "-trace_stat", "-fd", "1", "-stf"])
            .arg(dir.path().join("stat.csv"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("stdout log"))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log"))
            .spawn()
            .expect("sipp is installed (Debian package sip-tester)");
        Sipp {
            child,
            dir,
            what: what.to_string(),
        }
    }

    /// Waits up to `within` for sipp to exit (then kills it); whether it exited 0.
    fn wait(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for sipp") {
                return status.success();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A cumulative counter (e.g. `SuccessfulCall(C)`) from the last statistics row.
    fn counter(&self, name: &str) -> u64 {
        let stat = std::fs::read_to_string(self.dir.path().join("stat.csv")).unwrap_or_default();
        let mut rows = stat.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = rows.next().unwrap_or_default().split(';').collect();
        let last: Vec<&str> = rows.next_back().unwrap_or_default().split(';').collect();
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|column| last.get(column))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the statistics of {}:\n{stat}", self.what))
    }

    /// What sipp printed, for failure messages.
    fn output(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "{}:\n{}{}",
            self.what,
            read("stdout.log"),
            read("stderr.log")
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sipp UAS answering `calls` calls on a free port of 127.0.0.1, once it listens.
fn phone(calls: u32) -> (Sipp, u16) {
    let port = free_port();
    let args = [
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-m",
        &calls.to_string(),
    ];
    let sipp = Sipp::spawn("the phone", "uas_answer.xml", &args.map(String::from));
    let deadline = Instant::now() + Duration::from_secs(10);
    // Bound once our own bind of its port fails.
    while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the phone's sipp did not bind {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (sipp, port)
}

/// The carrier: `calls` answered calls from the trunk (127.0.0.1) at `rate` per second.
fn calls_from_the_trunk(daemon: &Daemon, calls: u32, rate: u32) -> Sipp {
    let args = [
        daemon.addr().to_string(),
        "-s".into(),
        "4001234567".into(),
        "-key".into(),
        "caller".into(),
        "13800138000".into(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        free_port().to_string(),
        "-m".into(),
        calls.to_string(),
        "-r".into(),
        rate.to_string(),
        "-d".into(),
        "0".into(),
        "-timeout".into(),
        "120s".into(),
    ];
    Sipp::spawn("the trunk's calls", "uac_answered.xml", &args)
}

/// Asserts that the carrier's calls all completed: sipp exited 0 with none failed.
fn assert_all_completed(calls: &mut Sipp, expected: u32, daemon: &Daemon) {
    let exited_cleanly = calls.wait(Duration::from_secs(120));
    let (succeeded, failed) = (
        calls.counter("SuccessfulCall(C)"),
        calls.counter("FailedCall(C)"),
    );
    assert!(
        exited_cleanly && failed == 0 && succeeded == u64::from(expected),
        "{succeeded} calls succeeded, {failed} failed of {expected}\n{}\ndaemon log:\n{}",
        calls.output(),
        daemon.log_text()
    );
}

/// The issue asks for 20,000 INVITEs a second against 500 calls a second, and the
/// release build takes that with 0 failed calls (docs/performance.md). The tests run
/// the debug build, which spends 5 to 10 times the CPU on each message (half a core
/// for the 500 calls a second alone) while the three sipp processes share the
/// machine's two cores; so here the flood and the calls are scaled down to what a
/// loaded 2-core machine carries with room to spare. What is asserted is unchanged:
/// every call completes, and the flood leaves no memory behind.
const FLOOD_RATE: u32 = 8_000;
const FLOOD_SECONDS: u32 = 20;
/// The daemon's limit per source address: over twice what the trunk sends (INVITE,
/// ACK, BYE per call), so that the flood meets all three answers: the first 2,000 a
/// second get their 403, the next 2,000 are parsed and dropped, the rest are dropped
/// unparsed.
const MAX_REQUESTS_PER_SOURCE: u32 = 2_000;
const CALL_RATE: u32 = 250;
/// Calls placed while the flood runs (and, before it, to bring memory to its level).
const CALLS: u32 = CALL_RATE * FLOOD_SECONDS;
/// How far the daemon's resident memory may end above its level before the flood: the
/// flood holds nothing, but the allocator keeps some freed pages, and when memory is
/// read the transactions of the calls of the last 32 s (Timer J) are still held, which
/// after the second phase include some of the first's. A transaction per flooded
/// INVITE, as before, would hold hundreds of MiB.
const RSS_TOLERANCE_KIB: u64 = 24 * 1024;

#[test]
fn a_flood_from_an_untrusted_address_fails_no_trunk_call_and_leaves_no_memory() {
    assert_stranger_usable();
    let (mut phone, phone_port) = phone(2 * CALLS);
    // Logging every call would measure the log, not the daemon; the counters are
    // logged by sihai_server when it stops.
    let daemon = Daemon::start_edited(
        &format!("max_requests_per_source = {MAX_REQUESTS_PER_SOURCE}"),
        &routing(phone_port),
        |text| text.replace("level = \"debug\"", "level = \"warn,sihai_server=info\""),
    );
    let pid = daemon.pid();

    // The same calls once without the flood: memory at the level calls bring it to.
    let mut calls = calls_from_the_trunk(&daemon, CALLS, CALL_RATE);
    assert_all_completed(&mut calls, CALLS, &daemon);
    let before = rss_kib(pid);
    let cpu_before = cpu_time(pid);

    let started = Instant::now();
    let flood_args = [
        daemon.addr().to_string(),
        "-s".into(),
        "4001234567".into(),
        "-i".into(),
        STRANGER.into(),
        "-p".into(),
        free_port().to_string(),
        "-r".into(),
        FLOOD_RATE.to_string(),
        "-rp".into(),
        "1000".into(),
        "-m".into(),
        (FLOOD_RATE * FLOOD_SECONDS).to_string(),
        // sipp stops at this bound if it cannot keep the rate.
        "-timeout".into(),
        format!("{}s", FLOOD_SECONDS + 5),
    ];
    let mut flood = Sipp::spawn("the flood", "flood_invite.xml", &flood_args);
    let mut calls = calls_from_the_trunk(&daemon, CALLS, CALL_RATE);
    let mut during = 0;
    while flood.child.try_wait().expect("wait for sipp").is_none()
        && started.elapsed() < Duration::from_secs(u64::from(FLOOD_SECONDS) + 10)
    {
        during = during.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(250));
    }
    flood.wait(Duration::from_secs(5));
    let flood_time = started.elapsed();
    let sent = flood.counter("OutgoingCall(C)");
    assert_all_completed(&mut calls, CALLS, &daemon);
    assert!(phone.wait(Duration::from_secs(30)), "{}", phone.output());
    let cpu = cpu_time(pid) - cpu_before;
    let after = rss_kib(pid);

    let log = daemon.stop();
    let rejected = counter(&log, "untrusted_rejected");
    let limited = counter(&log, "flood_limited");
    eprintln!(
        "flood: {sent} INVITEs from {STRANGER} in {flood_time:.1?} ({:.0}/s); \
         {rejected} answered with one 403 each, {limited} dropped over the flood limit; \
         daemon CPU during the flood phase {cpu:.1?}; RSS before {before} KiB, \
         peak during {during} KiB, after {after} KiB",
        sent as f64 / flood_time.as_secs_f64()
    );
    assert!(sent > 0, "sipp sent nothing: {}", flood.output());
    // The kernel may drop what overflows the socket's buffer; nothing is answered twice.
    assert!(
        rejected + limited <= sent,
        "{rejected} rejected + {limited} limited > {sent} sent"
    );
    assert!(rejected > 0, "the flood reached the daemon");
    assert!(limited > 0, "the flood met its limit");
    // What a spoofed source can draw is bounded by the limit: a burst of one second's
    // worth, then the rate, for as long as the flood lasted.
    let bound = u64::from(MAX_REQUESTS_PER_SOURCE) * (flood_time.as_secs() + 2);
    assert!(rejected <= bound, "{rejected} 403s in {flood_time:?}");
    assert!(
        after <= before + RSS_TOLERANCE_KIB,
        "memory after the flood {after} KiB, before {before} KiB (tolerance {RSS_TOLERANCE_KIB} KiB)"
    );
}

/// An OPTIONS from `socket` (on the trunk's address) with `user_agent`.
fn options_with_user_agent(
    socket: &UdpSocket,
    daemon: &Daemon,
    user_agent: &str,
    n: u32,
) -> Vec<u8> {
    let local = socket.local_addr().expect("local address");
    format!(
        "OPTIONS sip:4001234567@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bKscan{n};rport\r\n\
         From: <sip:100@{local}>;tag=scan{n}\r\n\
         To: <sip:4001234567@127.0.0.1:{port}>\r\n\
         Call-ID: scanner-{n}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {user_agent}\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        port = daemon.port
    )
    .into_bytes()
}

#[test]
fn scanners_are_dropped_even_from_a_trunk_address() {
    // The trunk is 127.0.0.1, where these probes come from: only the User-Agent tells a
    // scanner, the built-in list's and the one the configuration adds.
    let daemon = Daemon::start("scanner_user_agents = [\"evil-dialer\"]");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let probes = ["friendly-scanner", "sipvicious 0.3.4", "Evil-Dialer/2.1"];
    for (n, user_agent) in (1..).zip(probes) {
        socket
            .send_to(
                &options_with_user_agent(&socket, &daemon, user_agent, n),
                daemon.addr(),
            )
            .expect("send");
    }
    let answers = collect(&socket, Duration::from_secs(3));
    assert!(
        answers.is_empty(),
        "a scanner got {} answers: {:?}",
        answers.len(),
        answers.iter().map(|a| status_of(a)).collect::<Vec<_>>()
    );

    // The same probe with a carrier's User-Agent is answered.
    socket
        .send_to(
            &options_with_user_agent(&socket, &daemon, "Huawei SoftX3000", 9),
            daemon.addr(),
        )
        .expect("send");
    let answers = collect(&socket, Duration::from_secs(3));
    assert_eq!(
        answers.iter().map(|a| status_of(a)).collect::<Vec<_>>(),
        [Some(200)],
        "a carrier's OPTIONS"
    );
    let log = daemon.stop();
    assert_eq!(counter(&log, "scanners_dropped"), 3, "{log}");
}
