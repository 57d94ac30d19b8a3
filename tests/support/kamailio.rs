//! Kamailio running docs/kamailio-dispatcher.cfg in front of sihai nodes, as a
//! carrier's distribution: tests/dispatcher.rs and tests/multinode.rs.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, repo_path};

/// The probe interval docs/kamailio-dispatcher.cfg sets (DS_PING_INTERVAL, seconds).
pub const PING_INTERVAL_S: u64 = 2;
/// Its wait for a probe's answer (INVITE_TIMEOUT_MS, the tm fr_timer).
pub const PROBE_TIMEOUT_S: u64 = 2;

/// Kamailio running docs/kamailio-dispatcher.cfg in the foreground, in its own process
/// group (it forks workers), killed with the group when dropped.
pub struct Kamailio {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    /// Starts Kamailio on UDP 127.0.0.1:<free port> dispatching to the sihai nodes on
    /// 127.0.0.1:`nodes`, with the dispatcher list written as docs/dispatcher.list
    /// shows (flags 9: no calls before a node has answered a probe).
    pub fn start(nodes: &[u16]) -> Kamailio {
        let dir = tempfile::tempdir().expect("temp dir");
        let list = dir.path().join("dispatcher.list");
        let lines: String = nodes
            .iter()
            .map(|p| format!("1 sip:127.0.0.1:{p};transport=udp 9 0\n"))
            .collect();
        std::fs::write(&list, lines).expect("write dispatcher.list");
        let port = free_port();
        let log = dir.path().join("kamailio.log");
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(repo_path("docs/kamailio-dispatcher.cfg"))
            .args(["-DD", "-E"])
            .arg("-w")
            .arg(dir.path())
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.path().join("kamailio.pid"))
            .args(["-l", &format!("udp:127.0.0.1:{port}")])
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            .arg("-A")
            .arg(format!("DS_PING_INTERVAL={PING_INTERVAL_S}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .process_group(0)
            .spawn()
            .expect("kamailio is installed (Debian package kamailio)");
        Kamailio {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Waits up to `within` for the log to hold `line`; panics with the log if it does
    /// not, or if Kamailio exits. Returns how long it took.
    pub fn wait_for_log(&mut self, line: &str, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.log_text().contains(line) {
                return start.elapsed();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kamailio exited ({status}):\n{}", self.log_text());
            }
            assert!(
                start.elapsed() < within,
                "kamailio did not log {line:?} within {within:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // The whole group: the main process and the workers it forked.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
