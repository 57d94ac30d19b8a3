//! The `sihai` command line as an operator uses it: `check` accepts the sample
//! configuration and rejects a broken one with errors naming file, line and field;
//! `run` refuses to start on a broken file.

mod support;

use std::process::Command;

use support::{SIHAI, repo_path};

#[test]
fn check_accepts_the_sample_configuration() {
    let out = Command::new(SIHAI)
        .args(["check", "-c"])
        .arg(repo_path("config/sihai.toml"))
        .output()
        .expect("run sihai");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}

#[test]
fn check_reports_every_error_with_file_line_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[sip]\n\
         [[sip.listen]]\n\
         transport = \"sctp\"\n\
         address = \"127.0.0.1:5060\"\n\
         [log]\n\
         colour = \"blue\"\n",
    )
    .expect("write");
    let out = Command::new(SIHAI)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run sihai");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{file}:3:13: sip.listen[0].transport: unknown variant \"sctp\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:6:1: log.colour: unknown field \"colour\"")),
        "{stderr}"
    );
}

#[test]
fn check_reports_semantic_errors_in_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dup.toml");
    std::fs::write(
        &path,
        "[sip]\n\
         [[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:5060\"\n\
         [[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:5060\"\n\
         [sip.timers]\nt1_ms = 1000\nt2_ms = 999\n",
    )
    .expect("write");
    let out = Command::new(SIHAI)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run sihai");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        stderr.contains(&format!(
            "{file}:5:1: sip.listen[1]: duplicate listen entry"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:10:9: sip.timers.t2_ms:")),
        "{stderr}"
    );
}

#[test]
fn run_refuses_a_broken_configuration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.toml");
    std::fs::write(&path, "[sip]\n").expect("write");
    let out = Command::new(SIHAI)
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .expect("run sihai");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sip.listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_names_a_missing_file() {
    let out = Command::new(SIHAI)
        .args(["check", "-c", "/nonexistent/sihai.toml"])
        .output()
        .expect("run sihai");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sihai.toml"));
}
