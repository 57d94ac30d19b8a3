//! Reloading a running daemon (SIGHUP) as an operator does: a change that can be applied
//! is applied — the log level, a shortened recording retention or a new enterprise's
//! (the sweep runs at once), a group's new phone list without forgetting the channels in
//! use — and a change that needs a restart rejects the whole reload, leaving the running
//! configuration as it was. `sihai check --running` tells which beforehand.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Caller, Daemon, Phone, SIHAI, UdpClient, config_text, free_port, options};

const RELOADED: &str = "configuration reloaded trigger=\"SIGHUP\"";
const REJECTED: &str = "configuration rejected; the running configuration stays trigger=\"SIGHUP\"";

/// A trunk for 127.0.0.1, enterprise `acme` (with `enterprise` settings), its number
/// 4001234567 and plan `main` ringing group `sales` with `phones`, then `rest`.
fn routing(enterprise: &str, phones: &[String], rest: &str) -> String {
    format!(
        r#"
[[trunk]]
name = "lab"
sources = ["127.0.0.1"]
gateway = "sip:{{number}}@127.0.0.1:{gateway}"

[[enterprise]]
id = "acme"
name = "Acme"
{enterprise}

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
phones = [
  {phones}
]

{rest}
"#,
        gateway = free_port(),
        phones = phones.join(",\n  "),
    )
}

/// A phone of `sales` reached at `uri`, carrying one call at a time.
fn phone(uri: &str) -> String {
    format!("{{ uri = \"{uri}\", capacity = 1 }}")
}

/// A second 400 number of acme, on the same plan.
const SECOND_NUMBER: &str = "\n[[number]]\nnumber = \"4007654321\"\nenterprise = \"acme\"\nstatus = \"active\"\nplan = \"main\"\n";

/// Replaces the daemon's configuration file with `text`, atomically.
fn write_config(daemon: &Daemon, text: &str) {
    let tmp = daemon.dir.path().join("sihai.toml.new");
    std::fs::write(&tmp, text).expect("write new config");
    std::fs::rename(&tmp, daemon.config_path()).expect("replace config");
}

/// Sends a datagram that is not SIP (answered `400`, and logged at debug), then an
/// OPTIONS, and waits for an answer: the daemon handles them in order, so whatever the
/// first made it log is in the log by then.
fn send_garbage_and_sync(daemon: &Daemon, n: u32) {
    let client = UdpClient::new();
    client.send(b"this is not SIP\r\n\r\n", daemon.addr());
    client.send(
        &options(&client, daemon.port, &format!("sync-{n}")),
        daemon.addr(),
    );
    assert!(
        client.recv_within(Duration::from_secs(5)).is_some(),
        "no answer to OPTIONS:\n{}",
        daemon.log_text()
    );
}

#[test]
fn a_reload_changes_the_log_level_and_the_log_has_no_colour_codes() {
    // The test's datagrams come from 127.0.0.1, which must be a trunk: requests from
    // anywhere else are turned away before they are parsed or logged.
    const TRUNK: &str = "[[trunk]]\nname = \"lab\"\nsources = [\"127.0.0.1\"]\ngateway = \"sip:{number}@127.0.0.1:5080\"\n";
    let daemon = Daemon::start_with("", TRUNK);
    let config = |level: &str| {
        let text = config_text(daemon.port, daemon.dir.path(), "", TRUNK);
        assert!(
            text.contains("level = \"debug\""),
            "the generated file sets the level"
        );
        text.replace("level = \"debug\"", &format!("level = \"{level}\""))
    };
    const DROPPED: &str = "rejecting malformed request";
    // Started at debug: the dropped datagram is logged.
    send_garbage_and_sync(&daemon, 1);
    daemon.wait_for_log(DROPPED, 1, Duration::from_secs(5));

    write_config(&daemon, &config("info"));
    daemon.hangup();
    daemon.wait_for_log(RELOADED, 1, Duration::from_secs(10));
    send_garbage_and_sync(&daemon, 2);
    let log = daemon.log_text();
    assert_eq!(
        log.matches(DROPPED).count(),
        1,
        "at info, debug lines are no longer written:\n{log}"
    );

    write_config(&daemon, &config("debug"));
    daemon.hangup();
    daemon.wait_for_log(RELOADED, 2, Duration::from_secs(10));
    send_garbage_and_sync(&daemon, 3);
    daemon.wait_for_log(DROPPED, 2, Duration::from_secs(5));
    let log = daemon.log_text();
    assert!(log.contains("log level changed"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "a log written to a file has no ANSI colour codes:\n{log}"
    );
}

#[test]
fn json_log_lines_carry_timestamp_level_and_message_and_the_format_needs_a_restart() {
    const TRUNK: &str = "[[trunk]]\nname = \"lab\"\nsources = [\"127.0.0.1\"]\ngateway = \"sip:{number}@127.0.0.1:5080\"\n";
    let with_log = |text: String, level: &str, format: &str| {
        assert!(
            text.contains("level = \"debug\"\n"),
            "the generated file sets the level"
        );
        text.replace(
            "level = \"debug\"\n",
            &format!("level = \"{level}\"\nformat = \"{format}\"\n"),
        )
    };
    let daemon = Daemon::start_edited("", TRUNK, |text| with_log(text, "debug", "json"));
    let config = |level: &str, format: &str| {
        with_log(
            config_text(daemon.port, daemon.dir.path(), "", TRUNK),
            level,
            format,
        )
    };
    // A debug line with fields of its own (the source, the fault).
    send_garbage_and_sync(&daemon, 1);
    daemon.wait_for_log(
        "\"message\":\"rejecting malformed request\"",
        1,
        Duration::from_secs(5),
    );

    // The level still changes on reload, and the log stays JSON.
    write_config(&daemon, &config("info", "json"));
    daemon.hangup();
    daemon.wait_for_log(
        "\"message\":\"configuration reloaded\"",
        1,
        Duration::from_secs(10),
    );
    send_garbage_and_sync(&daemon, 2);
    // The format does not: the reload is rejected, naming the setting.
    write_config(&daemon, &config("info", "text"));
    daemon.hangup();
    daemon.wait_for_log(
        "\"message\":\"configuration rejected; the running configuration stays\"",
        1,
        Duration::from_secs(10),
    );
    let log = daemon.stop();

    let mut messages = Vec::new();
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("a log line that is not JSON ({err}): {line}\n{log}"));
        let field = |name: &str| {
            event
                .get(name)
                .unwrap_or_else(|| panic!("no {name:?} in {line}"))
        };
        let timestamp = field("timestamp").as_str().expect("timestamp string");
        timestamp
            .parse::<jiff::Timestamp>()
            .unwrap_or_else(|err| panic!("timestamp {timestamp:?} is not RFC 3339: {err}"));
        let level = field("level").as_str().expect("level string");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "level {level:?} in {line}"
        );
        assert!(field("target").is_string(), "{line}");
        let message = field("fields")
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_else(|| panic!("no fields.message in {line}"));
        messages.push((level.to_owned(), message.to_owned(), event.clone()));
    }
    let find = |message: &str| {
        messages
            .iter()
            .find(|(_, m, _)| m.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} line in the log:\n{log}"))
    };
    let (level, _, malformed) = find("rejecting malformed request");
    assert_eq!(level, "DEBUG");
    assert!(
        malformed["fields"]["source"].is_string(),
        "an event's own fields sit beside its message: {malformed}"
    );
    let (level, _, _) =
        find("log.format: changed from \"json\" to \"text\", which needs a restart");
    assert_eq!(level, "ERROR");
    find("shutting down");
    assert_eq!(
        messages
            .iter()
            .filter(|(_, m, _)| m == "rejecting malformed request")
            .count(),
        1,
        "at info after the reload, debug lines are no longer written:\n{log}"
    );
}

#[test]
fn a_reload_that_changes_a_listener_is_rejected_whole_and_calls_route_as_before() {
    let mut answers = Phone::start("uas_answer.xml", 2, 0);
    let base = routing("", &[phone(&answers.uri("13900000001"))], "");
    let daemon = Daemon::start_with("", &base);
    let with_number = format!("{base}{SECOND_NUMBER}");
    let moved = config_text(daemon.port, daemon.dir.path(), "", &with_number).replace(
        &format!(
            "transport = \"tcp\"\naddress = \"127.0.0.1:{}\"",
            daemon.port
        ),
        &format!(
            "transport = \"tcp\"\naddress = \"127.0.0.1:{}\"",
            free_port()
        ),
    );
    assert!(moved.contains(SECOND_NUMBER.trim()));

    write_config(&daemon, &moved);
    daemon.hangup();
    daemon.wait_for_log(REJECTED, 1, Duration::from_secs(10));
    let log = daemon.plain_log();
    assert!(
        log.contains("sip.listen: changed from [udp 127.0.0.1:")
            && log.contains("which needs a restart"),
        "the rejection names the setting and why:\n{log}"
    );
    assert!(!log.contains(RELOADED), "{log}");
    // Nothing of the file was applied: the old number routes, the new one does not.
    Caller::new(&daemon, "uac_answered.xml").run();
    Caller::refused(&daemon, 404).dialling("4007654321").run();

    // With the listener back as it runs, the same change is accepted.
    daemon.rewrite_routing("", &with_number);
    daemon.hangup();
    daemon.wait_for_log(RELOADED, 1, Duration::from_secs(10));
    Caller::new(&daemon, "uac_answered.xml")
        .dialling("4007654321")
        .run();
    answers.finish(&daemon);
}

#[test]
fn check_running_tells_whether_a_change_applies_on_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let running = dir.path().join("running.toml");
    let text = config_text(
        5060,
        dir.path(),
        "",
        &routing("", &[phone("sip:a@127.0.0.1")], ""),
    );
    std::fs::write(&running, &text).expect("write");
    let check = |new: &str| {
        let path = dir.path().join("new.toml");
        std::fs::write(&path, new).expect("write");
        Command::new(SIHAI)
            .args(["check", "--reload-rules", "-c"])
            .arg(&path)
            .arg("--running")
            .arg(&running)
            .output()
            .expect("run sihai")
    };

    let applied = check(&text.replace("level = \"debug\"", "level = \"info\""));
    let stdout = String::from_utf8_lossy(&applied.stdout);
    assert!(applied.status.success(), "{stdout}");
    assert!(stdout.contains("every change from"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("sip.listen") && l.contains("needs a restart")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("log.level") && l.contains("applied on reload")),
        "{stdout}"
    );

    let restart = check(&text.replace("commit_interval_ms = 20", "commit_interval_ms = 40"));
    let stderr = String::from_utf8_lossy(&restart.stderr);
    assert!(!restart.status.success());
    assert!(
        stderr.contains("store.commit_interval_ms: changed from 20 to 40, which needs a restart"),
        "{stderr}"
    );
    assert!(stderr.contains("new.toml:"), "names the file: {stderr}");
}

#[test]
fn the_retention_sweep_runs_on_reload_for_a_shorter_retention_and_a_new_enterprise() {
    let recordings = tempfile::tempdir().expect("temp dir");
    let today = sihai_routing::schedule::china_time_zone()
        .to_datetime(jiff::Timestamp::now())
        .date();
    let day = |enterprise: &str, days_ago: i64| {
        let date = today
            .checked_sub(jiff::Span::new().days(days_ago))
            .expect("a date");
        recordings.path().join(enterprise).join(date.to_string())
    };
    let (ancient, old, young, other) = (
        day("acme", 100),
        day("acme", 20),
        day("acme", 10),
        day("newco", 40),
    );
    for dir in [&ancient, &old, &young, &other] {
        std::fs::create_dir_all(dir).expect("create a day directory");
        std::fs::write(dir.join("call.wav"), b"RIFF").expect("a recording");
    }
    let media = format!(
        "[media]\nrecordings = \"{}\"\n",
        recordings.path().display()
    );
    let nobody = phone(&format!("sip:13900000099@127.0.0.1:{}", free_port()));
    let daemon = Daemon::start_with(
        "",
        &routing(
            "recording_retention_days = 30",
            std::slice::from_ref(&nobody),
            &media,
        ),
    );
    // The sweep at start takes what is past 30 days of acme's only.
    daemon.wait_for_log(&ancient.display().to_string(), 1, Duration::from_secs(10));
    assert!(!ancient.exists());
    assert!(old.exists() && young.exists() && other.exists());

    let newco = "[[enterprise]]\nid = \"newco\"\nname = \"NewCo\"\nrecording_retention_days = 30\n";
    daemon.rewrite_routing(
        "",
        &routing(
            "recording_retention_days = 15",
            &[nobody],
            &format!("{media}{newco}"),
        ),
    );
    daemon.hangup();
    daemon.wait_for_log(RELOADED, 1, Duration::from_secs(10));
    for gone in [&old, &other] {
        daemon.wait_for_log(&gone.display().to_string(), 1, Duration::from_secs(10));
        assert!(!gone.exists(), "{} is past its retention", gone.display());
    }
    assert!(
        young.join("call.wav").exists(),
        "10 days is within the 15 kept"
    );
    let log = daemon.plain_log();
    assert!(
        log.contains("deleted recordings past their retention"),
        "{log}"
    );
}

#[test]
fn a_group_keeps_its_busy_phone_busy_across_a_reload_that_adds_a_phone() {
    // `held` answers the first call, which stays up across the reload, and later the
    // third; `busy` (added by the reload, first in the list) turns down two calls;
    // `spare` answers the second.
    let mut held = Phone::start("uas_answer.xml", 2, 0);
    let mut busy = Phone::start("uas_busy.xml", 2, 0);
    let mut spare = Phone::start("uas_answer.xml", 1, 0);
    let held_uri = held.uri("13900000001");
    let spare_uri = spare.uri("13900000002");
    let daemon = Daemon::start_with("", &routing("", &[phone(&held_uri), phone(&spare_uri)], ""));
    // Long enough to outlast the reload and the second call on a loaded machine.
    let mut first = Caller::new(&daemon, "uac_answered.xml")
        .talking_ms(15_000)
        .spawn();
    daemon.wait_for_log("call answered", 1, Duration::from_secs(10));

    daemon.rewrite_routing(
        "",
        &routing(
            "",
            &[
                phone(&busy.uri("13900000003")),
                phone(&held_uri),
                phone(&spare_uri),
            ],
            "",
        ),
    );
    daemon.hangup();
    daemon.wait_for_log(RELOADED, 1, Duration::from_secs(10));
    // The first call is still up: `held` is at its capacity and is passed over.
    Caller::new(&daemon, "uac_answered.xml").run();
    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].answered_by, spare_uri);
    assert!(
        rows[0]
            .attempts
            .contains(&format!("{held_uri}:at_capacity")),
        "the phone still on the first call is not rung: {rows:#?}"
    );

    // The first call ends, which frees `held` in the new list.
    first.finish(Duration::from_secs(40), &daemon);
    let rows = daemon.wait_for_cdrs(2);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    Caller::new(&daemon, "uac_answered.xml").run();
    let rows = daemon.wait_for_cdrs(3);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(rows[0].answered_by, held_uri, "newest first: {rows:#?}");
    held.finish(&daemon);
    busy.finish(&daemon);
    spare.finish(&daemon);
}
