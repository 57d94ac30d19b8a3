//! Shared plumbing for the end-to-end tests: start the built `sihai` binary on a free
//! loopback port with a configuration written for the test, talk to it over real
//! sockets, and run sipp against it. Every wait is bounded.

#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod api;
pub mod kamailio;
pub mod portal;
pub mod postgres;
pub mod routing;
pub mod rtp;
pub mod stats;
pub mod webhook;

pub const SIHAI: &str = env!("CARGO_BIN_EXE_sihai");

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A port free on 127.0.0.1 for both UDP and TCP at the time of the call.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// A port free on ::1 for both UDP and TCP at the time of the call. Panics if the
/// machine has no IPv6 loopback: a test that needs one must not pass without it.
pub fn free_port_v6() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("[::1]:0").unwrap_or_else(|e| {
            panic!("IPv6 loopback ::1 is not usable on this machine ({e}): the IPv6 tests need it")
        });
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("::1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on ::1");
}

/// A running daemon, killed when dropped.
pub struct Daemon {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon listening on UDP and TCP 127.0.0.1:<free port>, with the given
    /// extra TOML appended to the `[sip]` table (e.g. timers), a trunk for 127.0.0.1 and
    /// no 400 numbers.
    pub fn start(sip_extra: &str) -> Daemon {
        Daemon::start_with(
            sip_extra,
            "[[trunk]]\nname = \"lab\"\nsources = [\"127.0.0.1\"]\ngateway = \"sip:{number}@127.0.0.1:5080\"\n",
        )
    }

    /// Starts the daemon with `routing` (trunks, enterprises, numbers, plans, groups,
    /// schedules as TOML) after the generated `[sip]`, `[log]` and `[store]` tables.
    pub fn start_with(sip_extra: &str, routing: &str) -> Daemon {
        Daemon::start_committing_every(TEST_COMMIT_INTERVAL_MS, sip_extra, routing)
    }

    /// [`start_with`](Daemon::start_with) with `[store] commit_interval_ms` set to
    /// `commit_interval_ms` instead of the tests' [`TEST_COMMIT_INTERVAL_MS`].
    pub fn start_committing_every(
        commit_interval_ms: u32,
        sip_extra: &str,
        routing: &str,
    ) -> Daemon {
        Daemon::start_edited(sip_extra, routing, |text| {
            text.replace(
                &format!("commit_interval_ms = {TEST_COMMIT_INTERVAL_MS}\n"),
                &format!("commit_interval_ms = {commit_interval_ms}\n"),
            )
        })
    }

    /// [`start_with`](Daemon::start_with), with the generated configuration passed
    /// through `edit` first: for what the generated tables take no extra text in (a
    /// listener's settings, the log level).
    pub fn start_edited(
        sip_extra: &str,
        routing: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Daemon {
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("sihai.toml");
        std::fs::write(
            &config,
            edit(config_text(port, dir.path(), sip_extra, routing)),
        )
        .expect("write config");
        let log = dir.path().join("sihai.log");
        let child = spawn(&config, &log);
        let mut daemon = Daemon {
            child,
            port,
            dir,
            log,
        };
        daemon.wait_ready();
        daemon
    }

    /// Starts the daemon in `dir` (which may already hold its store, as a previous run
    /// or the test left it), configured as [`start_with`](Daemon::start_with).
    pub fn start_in(dir: tempfile::TempDir, sip_extra: &str, routing: &str) -> Daemon {
        let port = free_port();
        let config = dir.path().join("sihai.toml");
        std::fs::write(&config, config_text(port, dir.path(), sip_extra, routing))
            .expect("write config");
        Daemon::restart(dir, port)
    }

    /// Starts the daemon again on the configuration and store in `dir` (from
    /// [`kill9`](Daemon::kill9) or [`stop_keeping_dir`](Daemon::stop_keeping_dir)),
    /// listening on `port` as before; its log goes to a new file.
    pub fn restart(dir: tempfile::TempDir, port: u16) -> Daemon {
        let config = dir.path().join("sihai.toml");
        let mut n = 1;
        let log = loop {
            let log = dir.path().join(format!("sihai-{n}.log"));
            if !log.exists() {
                break log;
            }
            n += 1;
        };
        let child = spawn(&config, &log);
        let mut daemon = Daemon {
            child,
            port,
            dir,
            log,
        };
        daemon.wait_ready();
        daemon
    }

    /// Stops with SIGTERM and keeps the directory (configuration, store, logs) for a
    /// [`restart`](Daemon::restart).
    pub fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        self.stop_now();
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sihai.toml")
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("sihai.db")
    }

    /// Kills the daemon with SIGKILL (no chance to flush) and returns its log.
    pub fn kill9(mut self) -> (tempfile::TempDir, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = self.log_text();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        (dir, log)
    }

    /// Sends SIGHUP (reload).
    pub fn hangup(&self) {
        let _ = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status();
    }

    /// The daemon's process id (for /proc/<pid>/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn wait_ready(&mut self) {
        let client = UdpClient::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut n = 0;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "sihai exited during start-up with {status}:\n{}",
                    self.log_text()
                );
            }
            n += 1;
            client.send(
                &options(&client, self.port, &format!("ready-{n}")),
                self.addr(),
            );
            if client.recv_within(Duration::from_millis(200)).is_some() {
                return;
            }
        }
        panic!(
            "sihai did not answer OPTIONS within 15 s:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Stops the daemon and returns the log. As an operator who will not wait for the
    /// calls: SIGTERM, and if calls keep it draining after a second, SIGTERM again,
    /// which ends them at once (tests/shutdown.rs is where the drain itself is tested).
    pub fn stop(mut self) -> String {
        self.stop_now();
        self.log_text()
    }

    /// SIGTERM, a second one if the daemon still drains after a second, then up to
    /// 10 s for it to exit (ending its calls takes at most 4 s).
    fn stop_now(&mut self) {
        let sigterm = |pid: u32| {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        };
        let exited_within = |child: &mut Child, wait: Duration| {
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        };
        sigterm(self.child.id());
        if exited_within(&mut self.child, Duration::from_secs(1)) {
            return;
        }
        sigterm(self.child.id());
        if !exited_within(&mut self.child, Duration::from_secs(10)) {
            panic!("sihai did not stop within 10 s of its second SIGTERM");
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and returns at once: the first drains the daemon, the second ends
    /// its calls at once (tests/shutdown.rs).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits up to `within` for the daemon to exit: its exit status, `None` if it is
    /// still running then.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain UDP socket on 127.0.0.1 for hand-written SIP.
pub struct UdpClient {
    pub socket: UdpSocket,
}

impl UdpClient {
    pub fn new() -> UdpClient {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client");
        UdpClient { socket }
    }

    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("local addr").port()
    }

    pub fn send(&self, message: &[u8], to: SocketAddr) {
        self.socket.send_to(message, to).expect("send");
    }

    /// The next datagram, or `None` if nothing arrives in `wait`.
    pub fn recv_within(&self, wait: Duration) -> Option<Vec<u8>> {
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = vec![0u8; 65535];
        match self.socket.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    /// Every datagram that arrives within `window`.
    pub fn collect_for(&self, window: Duration) -> Vec<Vec<u8>> {
        let end = Instant::now() + window;
        let mut got = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return got;
            }
            match self.recv_within(left) {
                Some(d) => got.push(d),
                None => return got,
            }
        }
    }
}

/// The `[store] commit_interval_ms` a test daemon runs with unless told otherwise.
pub const TEST_COMMIT_INTERVAL_MS: u32 = 20;

/// The configuration a test daemon runs with.
pub fn config_text(port: u16, dir: &Path, sip_extra: &str, routing: &str) -> String {
    format!(
        "[sip]\nuser_agent = \"sihai-test\"\n{sip_extra}\n\
         [[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:{port}\"\n\
         [[sip.listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n\
         [log]\nlevel = \"debug\"\n\
         [store]\nsqlite = \"{}\"\ncommit_interval_ms = {TEST_COMMIT_INTERVAL_MS}\n\
         {routing}\n",
        dir.join("sihai.db").display()
    )
}

fn spawn(config: &Path, log: &Path) -> Child {
    Command::new(SIHAI)
        .args(["run", "-c"])
        .arg(config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn sihai")
}

pub fn options(client: &UdpClient, port: u16, call_id: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:4001234567@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{call_id}\r\n\
         From: <sip:probe@127.0.0.1:{cport}>;tag=probe\r\n\
         To: <sip:4001234567@127.0.0.1:{port}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        cport = client.port()
    )
    .into_bytes()
}

/// A hand-written INVITE without SDP from `client` to the daemon on `port`: a call to
/// `dialled` from `caller`, told apart by `call_id` (letters, digits and dashes: it is
/// also the branch's stem).
pub fn invite(
    client: &UdpClient,
    port: u16,
    call_id: &str,
    caller: &str,
    dialled: &str,
) -> Vec<u8> {
    format!(
        "INVITE sip:{dialled}@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{call_id}\r\n\
         From: <sip:{caller}@127.0.0.1:{cport}>;tag=carrier\r\n\
         To: <sip:{dialled}@127.0.0.1:{port}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:{caller}@127.0.0.1:{cport}>\r\nContent-Length: 0\r\n\r\n",
        cport = client.port()
    )
    .into_bytes()
}

/// The ACK for a non-2xx final `response` to a hand-written [`invite`]: the INVITE's
/// Request-URI, Via, From and Call-ID, the response's To (RFC 3261 §17.1.1.3).
pub fn ack_for_failure(invite: &[u8], response: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(invite).expect("UTF-8 INVITE");
    let uri = text.split_whitespace().nth(1).expect("INVITE Request-URI");
    let copy = |name: &str| header_of(invite, name).expect("INVITE header");
    format!(
        "ACK {uri} SIP/2.0\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\n\
         CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        copy("Via"),
        copy("From"),
        header_of(response, "To").expect("To of the response"),
        copy("Call-ID"),
    )
    .into_bytes()
}

/// Status code of a response datagram.
pub fn status_of(message: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(message).ok()?;
    let rest = text.strip_prefix("SIP/2.0 ")?;
    rest.get(..3)?.parse().ok()
}

/// First value of a header (exact long name, case-insensitive) in a message.
pub fn header_of<'a>(message: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(message).ok()?;
    text.split("\r\n").find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Runs sipp as a UAC against the daemon and returns its output; panics with sipp's
/// output if it does not exit 0 (every call successful).
pub fn sipp_uac(
    daemon: &Daemon,
    scenario: &str,
    transport: &str,
    calls: u32,
    rate: u32,
) -> SippRun {
    let local_port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new("sipp")
        .arg(format!("127.0.0.1:{}", daemon.port))
        .arg("-sf")
        .arg(repo_path(&format!("tests/sipp/{scenario}")))
        .args([
            "-s",
            "4001234567",
            "-i",
            "127.0.0.1",
            "-p",
            &local_port.to_string(),
        ])
        .args([
            "-t",
            transport,
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
        ])
        .args([
            "-timeout",
            "30s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-trace_msg",
        ])
        .args([
            "-error_file",
            dir.path().join("errors.log").to_str().expect("utf-8 path"),
        ])
        .args([
            "-message_file",
            dir.path()
                .join("messages.log")
                .to_str()
                .expect("utf-8 path"),
        ])
        .current_dir(dir.path())
        .output()
        .expect("sipp is installed (Debian package sip-tester)");
    let errors = std::fs::read_to_string(dir.path().join("errors.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "sipp {scenario} over {transport} failed ({}):\n{}\n{}\nsipp errors:\n{errors}\ndaemon log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        daemon.log_text()
    );
    let messages = std::fs::read_to_string(dir.path().join("messages.log")).unwrap_or_default();
    SippRun { output, messages }
}

/// What a sipp run printed and every message it sent and received.
pub struct SippRun {
    pub output: Output,
    /// sipp's `-trace_msg` log, complete once sipp has exited.
    pub messages: String,
}

impl SippRun {
    /// How many requests of `method` sipp sent, retransmissions included.
    pub fn sent(&self, method: &str) -> usize {
        self.messages
            .split("message sent (")
            .skip(1)
            .filter(|block| {
                block
                    .split_once("\n\n")
                    .is_some_and(|(_, msg)| msg.trim_start().starts_with(&format!("{method} ")))
            })
            .count()
    }
}

// ------------------------------------------------------------------ sipp, both sides

/// Where sipp keeps its scenario and, for a template, the copy with its fields filled in.
pub enum Scenario {
    /// `tests/sipp/<name>` as it is.
    File(&'static str),
    /// `tests/sipp/<name>` with each `{{KEY}}` replaced by its value (for what sipp reads
    /// no keyword in, such as the status code a `recv` expects).
    Template(&'static str, Vec<(&'static str, String)>),
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::File(name) | Scenario::Template(name, _) => name,
        }
    }

    /// The file sipp is to read, written into `dir` if it is a template.
    fn path_in(&self, dir: &Path) -> PathBuf {
        match self {
            Scenario::File(name) => repo_path(&format!("tests/sipp/{name}")),
            Scenario::Template(name, fields) => {
                let mut text = std::fs::read_to_string(repo_path(&format!("tests/sipp/{name}")))
                    .expect("read scenario template");
                for (key, value) in fields {
                    text = text.replace(&format!("{{{{{key}}}}}"), value);
                }
                assert!(!text.contains("{{"), "unfilled field in {name}");
                let path = dir.join(name);
                std::fs::write(&path, text).expect("write scenario");
                path
            }
        }
    }
}

/// A sipp process in the background, with its own directory for its logs; killed if
/// dropped before it finished.
pub struct SippProcess {
    child: Child,
    what: String,
    dir: tempfile::TempDir,
}

impl SippProcess {
    fn spawn(what: String, scenario: &Scenario, args: &[String]) -> SippProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = scenario.path_in(dir.path());
        let log = |name: &str| {
            dir.path()
                .join(name)
                .to_str()
                .expect("utf-8 path")
                .to_string()
        };
        let child = Command::new("sipp")
            .args(args)
            .arg("-sf")
            .arg(&path)
            .arg("-nostdin")
            .args(
                // Unless the caller gives its own: a run of many calls may need longer.
                if args.iter().any(|a| a == "-timeout") {
                    &[][..]
                } else {
                    &["-timeout", "30s"][..]
                },
            )
            .arg("-timeout_error")
            .args(["-trace_err", "-error_file", &log("errors.log")])
            .args(["-trace_msg", "-message_file", &log("messages.log")])
            .args(["-trace_stat", "-stf", &log("stat.csv"), "-fd", "1"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("stdout log"))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log"))
            .spawn()
            .expect("sipp is installed (Debian package sip-tester)");
        SippProcess { child, what, dir }
    }

    /// Waits up to `within` for sipp to exit and asserts it exited 0 (every call it
    /// expected went as its scenario says); panics with sipp's errors, the tail of its
    /// message trace and the daemon's log otherwise.
    pub fn finish(&mut self, within: Duration, daemon: &Daemon) -> SippRun {
        self.finish_with_log(within, || daemon.log_text())
    }

    /// [`finish`](SippProcess::finish) with the daemon's log from `daemon_log`, for
    /// when the daemon is gone.
    pub fn finish_with_log(
        &mut self,
        within: Duration,
        daemon_log: impl Fn() -> String,
    ) -> SippRun {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for sipp") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        if !status.is_some_and(|s| s.success()) {
            let messages = read("messages.log");
            let mut start = messages.len().saturating_sub(6000);
            while !messages.is_char_boundary(start) {
                start += 1;
            }
            let tail = &messages[start..];
            panic!(
                "{} {}:\n{}\nsipp errors:\n{}\nlast messages:\n{tail}\ndaemon log:\n{}",
                self.what,
                status.map_or_else(
                    || format!("still running after {within:?}"),
                    |s| format!("failed ({s})")
                ),
                read("stdout.log") + &read("stderr.log"),
                read("errors.log"),
                daemon_log()
            );
        }
        SippRun {
            output: Output {
                status: status.expect("exited"),
                stdout: read("stdout.log").into_bytes(),
                stderr: read("stderr.log").into_bytes(),
            },
            messages: read("messages.log"),
        }
    }

    /// Waits up to `within` for sipp to exit, however its calls went (some refused,
    /// some cut); `None` if it is still running (then killed).
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for sipp") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every message sipp sent and received so far (its `-trace_msg` log).
    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("messages.log")).unwrap_or_default()
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sipp UAS playing one bound phone on its own free port of 127.0.0.1, expecting
/// exactly `calls` calls. Started (and listening) before the calls are made.
pub struct Phone {
    pub port: u16,
    process: SippProcess,
}

impl Phone {
    /// `scenario` from tests/sipp/, `pause_ms` for its `<pause/>` (how long it talks
    /// before hanging up, where it does).
    pub fn start(scenario: &'static str, calls: u32, pause_ms: u64) -> Phone {
        Phone::start_for(scenario, calls, pause_ms, 30)
    }

    /// [`start`](Phone::start) for a phone that may have to wait up to `timeout_s`
    /// seconds for all its calls (30 by default).
    pub fn start_for(scenario: &'static str, calls: u32, pause_ms: u64, timeout_s: u64) -> Phone {
        let port = free_port();
        let args = [
            "-timeout".to_string(),
            format!("{timeout_s}s"),
            "-i".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-m".into(),
            calls.to_string(),
            "-d".into(),
            pause_ms.to_string(),
        ];
        let mut process = SippProcess::spawn(
            format!("phone {scenario} on port {port}"),
            &Scenario::File(scenario),
            &args,
        );
        // A call routed before sipp has bound its port would find nobody there.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !udp_port_bound(port) {
            if let Ok(Some(status)) = process.child.try_wait() {
                panic!("sipp phone {scenario} exited at start-up with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "sipp phone {scenario} did not bind UDP port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Phone { port, process }
    }

    /// Every message the phone sent and received so far.
    pub fn messages(&self) -> String {
        self.process.messages()
    }

    /// The phone's SIP URI with `user` (e.g. its mobile number), for `uri = ...` in a group.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    /// Waits (bounded) for the phone to have handled all its calls and exit 0.
    pub fn finish(&mut self, daemon: &Daemon) {
        self.process.finish(Duration::from_secs(15), daemon);
    }

    /// [`finish`](Phone::finish) once the daemon is gone, with its last log.
    pub fn finish_after(&mut self, daemon_log: &str) {
        self.process
            .finish_with_log(Duration::from_secs(15), || daemon_log.to_string());
    }
}

/// Whether some socket is bound to UDP `port` (any local address), from
/// /proc/net/udp; without procfs, waits a moment and says yes.
fn udp_port_bound(port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/udp") else {
        std::thread::sleep(Duration::from_millis(300));
        return true;
    };
    let wanted = format!(":{port:04X}");
    table.lines().skip(1).any(|line| {
        line.split_whitespace()
            .nth(1)
            .is_some_and(|local| local.ends_with(&wanted))
    })
}

/// A sipp UAC placing calls to the daemon: the carrier's side of the trunk.
pub struct Caller<'a> {
    daemon: &'a Daemon,
    scenario: Scenario,
    service: String,
    caller: String,
    local_ip: &'static str,
    /// The daemon's address as sipp writes it, "127.0.0.1" or "[::1]", and its port
    /// there when not the daemon's IPv4 one.
    daemon_host: &'static str,
    daemon_port: Option<u16>,
    calls: u32,
    rate: u32,
    limit: Option<u32>,
    pause_ms: u64,
    tcp: bool,
    /// sipp's overall timeout for the whole run, in seconds.
    timeout_s: u64,
}

impl<'a> Caller<'a> {
    /// Calls to 4001234567 from 13800138000 (a Beijing mobile), one call, rate 10/s.
    pub fn new(daemon: &'a Daemon, scenario: &'static str) -> Caller<'a> {
        Caller::with(daemon, Scenario::File(scenario))
    }

    /// A call that must be refused with `status` (tests/sipp/uac_refused.xml).
    pub fn refused(daemon: &'a Daemon, status: u16) -> Caller<'a> {
        Caller::with(
            daemon,
            Scenario::Template("uac_refused.xml", vec![("STATUS", status.to_string())]),
        )
    }

    /// A call from a caller who withholds their number as a carrier signals it (an
    /// anonymous From, the number only in P-Asserted-Identity, `Privacy: id`) that must
    /// be refused with `status` (tests/sipp/uac_refused_privacy.xml).
    pub fn refused_withholding_identity(daemon: &'a Daemon, status: u16) -> Caller<'a> {
        Caller::with(
            daemon,
            Scenario::Template(
                "uac_refused_privacy.xml",
                vec![("STATUS", status.to_string())],
            ),
        )
    }

    fn with(daemon: &'a Daemon, scenario: Scenario) -> Caller<'a> {
        Caller {
            daemon,
            scenario,
            service: "4001234567".into(),
            caller: "13800138000".into(),
            local_ip: "127.0.0.1",
            daemon_host: "127.0.0.1",
            daemon_port: None,
            calls: 1,
            rate: 10,
            limit: None,
            pause_ms: 0,
            tcp: false,
            timeout_s: 30,
        }
    }

    /// Calls over one TCP connection instead of UDP.
    pub fn over_tcp(mut self) -> Self {
        self.tcp = true;
        self
    }

    /// The 400 number dialled (Request-URI user).
    pub fn dialling(mut self, number: &str) -> Self {
        self.service = number.into();
        self
    }

    /// The caller's number (From and P-Asserted-Identity user).
    pub fn caller(mut self, number: &str) -> Self {
        self.caller = number.into();
        self
    }

    /// Sends from another loopback address (e.g. 127.0.0.2), bound with `-i`.
    pub fn source_address(mut self, ip: &'static str) -> Self {
        self.local_ip = ip;
        self
    }

    /// Calls from ::1 to the daemon's `port` on ::1 (IPv6 loopback): the daemon must
    /// listen there (`[[sip.listen]]` address "[::1]:PORT") and a trunk admit ::1.
    pub fn over_ipv6(mut self, port: u16) -> Self {
        self.local_ip = "::1";
        self.daemon_host = "[::1]";
        self.daemon_port = Some(port);
        self
    }

    /// Sends the calls to a proxy on 127.0.0.1:`port` in front of the daemon (the
    /// carrier's dispatcher) instead of to the daemon itself.
    pub fn through(mut self, port: u16) -> Self {
        self.daemon_port = Some(port);
        self
    }

    /// `calls` calls at `rate` new calls per second.
    pub fn calls(mut self, calls: u32, rate: u32) -> Self {
        self.calls = calls;
        self.rate = rate;
        self
    }

    /// At most `limit` calls in progress at once (1: one after the other).
    pub fn at_most(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// How long each answered call talks before the caller hangs up.
    pub fn talking_ms(mut self, pause_ms: u64) -> Self {
        self.pause_ms = pause_ms;
        self
    }

    /// Gives the whole run up to `seconds` (30 by default): for many calls on a
    /// loaded machine.
    pub fn within_s(mut self, seconds: u64) -> Self {
        self.timeout_s = seconds;
        self
    }

    /// Starts sipp in the background.
    pub fn spawn(self) -> SippProcess {
        let mut args = vec![
            format!(
                "{}:{}",
                self.daemon_host,
                self.daemon_port.unwrap_or(self.daemon.port)
            ),
            "-s".into(),
            self.service.clone(),
            "-key".into(),
            "caller".into(),
            self.caller.clone(),
            "-i".into(),
            self.local_ip.into(),
            "-p".into(),
            free_port().to_string(),
            "-m".into(),
            self.calls.to_string(),
            "-r".into(),
            self.rate.to_string(),
            "-d".into(),
            self.pause_ms.to_string(),
            "-timeout".into(),
            format!("{}s", self.timeout_s),
        ];
        if let Some(limit) = self.limit {
            args.extend(["-l".into(), limit.to_string()]);
        }
        if self.tcp {
            args.extend(["-t".into(), "t1".into()]);
        }
        SippProcess::spawn(
            format!(
                "caller {} ({} calls to {} from {})",
                self.scenario.name(),
                self.calls,
                self.service,
                self.caller
            ),
            &self.scenario,
            &args,
        )
    }

    /// Places the calls and asserts that every one went as the scenario says.
    pub fn run(self) -> SippRun {
        let daemon = self.daemon;
        let within = Duration::from_secs(self.timeout_s.max(30) + 30);
        self.spawn().finish(within, daemon)
    }
}

// ------------------------------------------------------------------ call records

/// One line of `sihai cdr --csv`, as an operator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdrRow {
    pub number: String,
    pub caller: String,
    pub region: String,
    pub answered_by: String,
    pub setup: String,
    pub ring: String,
    pub answer: String,
    pub end: String,
    pub talk_s: u32,
    /// The talk time the call was charged for (0 when not billed).
    pub billed_seconds: u32,
    /// What the call cost, yuan with two decimals; empty when the call was not billed.
    pub cost: String,
    pub outcome: String,
    pub hangup: String,
    pub attempts: String,
    pub recording: String,
    /// The voice-menu keys pressed (`1>3`), empty when the plan has no menu.
    pub menu: String,
    /// The announcement (prompt name) played before an unanswered call was released.
    pub announcement: String,
    /// The caller's id in the enterprise's CRM (来电弹屏), empty when none.
    pub customer_id: String,
}

/// The CDRs (newest first) in the store that the configuration at `config` names,
/// read with `sihai cdr --csv` as a separate process.
pub fn read_cdrs(config: &Path) -> Vec<CdrRow> {
    let out = Command::new(SIHAI)
        .args(["cdr", "--csv", "--limit", "10000", "-c"])
        .arg(config)
        .output()
        .expect("run sihai cdr");
    assert!(
        out.status.success(),
        "sihai cdr failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 CSV");
    let mut records = parse_csv(&text).into_iter();
    let header = records.next().expect("CSV header");
    assert_eq!(
        header,
        [
            "number",
            "caller",
            "region",
            "answered_by",
            "setup",
            "ring",
            "answer",
            "end",
            "talk_s",
            "billed_seconds",
            "cost",
            "outcome",
            "hangup",
            "attempts",
            "recording",
            "menu",
            "announcement",
            "customer_id"
        ]
    );
    records
        .map(|f| {
            let [
                number,
                caller,
                region,
                answered_by,
                setup,
                ring,
                answer,
                end,
                talk_s,
                billed_seconds,
                cost,
                outcome,
                hangup,
                attempts,
                recording,
                menu,
                announcement,
                customer_id,
            ]: [String; 18] = f.try_into().expect("18 CSV fields");
            CdrRow {
                number,
                caller,
                region,
                answered_by,
                setup,
                ring,
                answer,
                end,
                talk_s: talk_s.parse().expect("talk_s is a number"),
                billed_seconds: billed_seconds.parse().expect("billed_seconds is a number"),
                cost,
                outcome,
                hangup,
                attempts,
                recording,
                menu,
                announcement,
                customer_id,
            }
        })
        .collect()
}

/// Polls `sihai cdr` (the store commits within tens of milliseconds) until at least
/// `count` CDRs are there, for up to 5 s; returns them, newest first.
pub fn wait_for_cdrs(config: &Path, count: usize) -> Vec<CdrRow> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = read_cdrs(config);
        if rows.len() >= count {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} CDRs after 5 s, expected {count}: {rows:#?}",
            rows.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// RFC 4180 records: quoted fields may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

impl Daemon {
    /// The CDRs so far, newest first (see [`wait_for_cdrs`]).
    pub fn wait_for_cdrs(&self, count: usize) -> Vec<CdrRow> {
        wait_for_cdrs(&self.config_path(), count)
    }

    /// Replaces the configuration file's routing part (everything after the generated
    /// `[sip]`, `[log]` and `[store]` tables) atomically, by writing a new file and
    /// renaming it over the old, so a reload never reads half a file.
    pub fn rewrite_routing(&self, sip_extra: &str, routing: &str) {
        let text = config_text(self.port, self.dir.path(), sip_extra, routing);
        let tmp = self.dir.path().join("sihai.toml.new");
        std::fs::write(&tmp, text).expect("write new config");
        std::fs::rename(&tmp, self.config_path()).expect("replace config");
    }

    /// The log without its terminal colours, as one reads it.
    pub fn plain_log(&self) -> String {
        let log = self.log_text();
        let mut plain = String::with_capacity(log.len());
        let mut rest = log.as_str();
        // ANSI "CSI ... m" sequences: ESC [ parameters m.
        while let Some(i) = rest.find("\x1b[") {
            plain.push_str(&rest[..i]);
            rest = &rest[i + 2..];
            rest = rest.find('m').map_or("", |end| &rest[end + 1..]);
        }
        plain.push_str(rest);
        plain
    }

    /// Waits up to `within` until the (plain) log contains `needle` at least `count`
    /// times.
    pub fn wait_for_log(&self, needle: &str, count: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let log = self.plain_log();
            if log.matches(needle).count() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged {count} times within {within:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to 5 s until the daemon has reloaded `count` times because the store's
    /// tenant data changed (an API write, `sihai apply`).
    pub fn wait_tenant_reloaded(&self, count: usize) {
        self.wait_for_log(TENANT_RELOADED, count, Duration::from_secs(5));
    }
}

/// Runs `sihai ARGS -c CONFIG` as an operator would, which must succeed; its output.
pub fn sihai_ok(config: &Path, args: &[&str]) -> String {
    let out = Command::new(SIHAI)
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sihai");
    assert!(
        out.status.success(),
        "sihai {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the daemon logs when it reloads for a change of the store's tenant data.
pub const TENANT_RELOADED: &str = "configuration reloaded trigger=\"tenant data\"";
