//! Shared plumbing for the end-to-end tests: start the built `sihai` binary on a free
//! loopback port with a configuration written for the test, talk to it over real
//! sockets, and run sipp against it. Every wait is bounded.

#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("sihai.toml");
        std::fs::write(&config, config_text(port, dir.path(), sip_extra, routing))
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

    /// Stops with SIGTERM and returns the log.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.log_text();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sihai did not stop within 10 s of SIGTERM");
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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

/// The configuration a test daemon runs with.
pub fn config_text(port: u16, dir: &Path, sip_extra: &str, routing: &str) -> String {
    format!(
        "[sip]\nuser_agent = \"sihai-test\"\n{sip_extra}\n\
         [[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:{port}\"\n\
         [[sip.listen]]\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n\
         [log]\nlevel = \"debug\"\n\
         [store]\nsqlite = \"{}\"\ncommit_interval_ms = 20\n\
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
            "-trace_stat",
            "-fd",
            "1",
        ])
        .args([
            "-error_file",
            dir.path().join("errors.log").to_str().expect("utf-8 path"),
        ])
        .args([
            "-stf",
            dir.path().join("stat.csv").to_str().expect("utf-8 path"),
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
    let stats = std::fs::read_to_string(dir.path().join("stat.csv")).unwrap_or_default();
    SippRun { output, stats }
}

/// What a sipp run printed and its final statistics line.
pub struct SippRun {
    pub output: Output,
    /// sipp's `-trace_stat` CSV (header line, then one line per report period).
    pub stats: String,
}

impl SippRun {
    /// A cumulative counter from the last statistics line, e.g. `Retransmissions(C)`.
    pub fn counter(&self, column: &str) -> u64 {
        let mut lines = self.stats.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
        let last: Vec<&str> = lines.next_back().unwrap_or_default().split(';').collect();
        let index = header
            .iter()
            .position(|h| *h == column)
            .unwrap_or_else(|| panic!("no {column} in sipp stats: {header:?}"));
        last.get(index)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("bad {column} value in {last:?}"))
    }
}
