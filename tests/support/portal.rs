//! Runs one of the portal's browser tests (`portal/e2e/*.mjs`, Node with playwright-core
//! driving Debian's Chromium headless) against a daemon this test started, answering its
//! `STEP` lines: the script says where it is, the test does the SIP side, then lets it go on.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use super::repo_path;

/// A running browser test.
pub struct BrowserTest {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    transcript: Vec<String>,
    script: String,
}

/// Where the screenshots of `script` go: target/portal-screenshots/<script>/ (not committed).
pub fn screenshot_dir(script: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_path("target"));
    target
        .join("portal-screenshots")
        .join(script.trim_end_matches(".mjs"))
}

impl BrowserTest {
    /// Starts `portal/e2e/<script>` against the API (and portal) at `api`, with `env`.
    pub fn start(script: &str, api: SocketAddr, env: &[(&str, String)]) -> BrowserTest {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&chromium).exists(),
            "the portal's browser tests need Chromium at {chromium} (Debian: apt-get install chromium; \
             ./scripts/test installs it)"
        );
        assert!(
            repo_path("portal/node_modules/playwright-core").exists(),
            "the portal's browser tests need portal/node_modules (built with the daemon: cargo build)"
        );
        let mut command = Command::new("node");
        command
            .arg(repo_path(&format!("portal/e2e/{script}")))
            .current_dir(repo_path("portal"))
            .env("SIHAI_URL", format!("http://{api}"))
            .env("SIHAI_SCREENSHOTS", screenshot_dir(script))
            .env("CHROMIUM", chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("run node (Node.js 20 is needed)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        BrowserTest {
            child,
            stdin,
            lines,
            transcript: Vec::new(),
            script: script.to_owned(),
        }
    }

    /// Everything the script printed, the rest of a failure's lines included.
    fn transcript(&mut self) -> String {
        while self.next_line(Duration::from_secs(3)).is_some() {}
        self.transcript.join("\n")
    }

    fn next_line(&mut self, within: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(within).ok()?;
        eprintln!("[{}] {line}", self.script);
        self.transcript.push(line.clone());
        Some(line)
    }

    /// Waits for `STEP name` (every line before it is kept for the failure message).
    pub fn wait_step(&mut self, name: &str) {
        loop {
            match self.next_line(Duration::from_secs(120)) {
                Some(line) if line == format!("STEP {name}") => return,
                Some(line) if line.starts_with("FAIL") || line.starts_with("STEP ") => {
                    let transcript = self.transcript();
                    panic!("{} did not reach step {name}:\n{transcript}", self.script)
                }
                Some(_) => {}
                None => {
                    let transcript = self.transcript();
                    panic!("{} did not reach step {name}:\n{transcript}", self.script)
                }
            }
        }
    }

    /// Lets the script go on past its step, telling it `answer`.
    pub fn go(&mut self, answer: &str) {
        writeln!(self.stdin, "{answer}").expect("the browser test is gone");
        self.stdin.flush().expect("flush");
    }

    /// Waits for the script's end: it must print PASS and exit 0.
    pub fn finish(mut self) {
        loop {
            match self.next_line(Duration::from_secs(180)) {
                Some(line) if line == "PASS" => break,
                Some(line) if line.starts_with("FAIL") => {
                    let transcript = self.transcript();
                    let _ = self.child.wait();
                    panic!("{} failed:\n{transcript}", self.script)
                }
                Some(_) => {}
                None => {
                    let _ = self.child.kill();
                    panic!(
                        "{} ended without PASS:\n{}",
                        self.script,
                        self.transcript.join("\n")
                    )
                }
            }
        }
        let status = self.child.wait().expect("wait for node");
        assert!(status.success(), "{} exited with {status}", self.script);
    }
}

impl Drop for BrowserTest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
