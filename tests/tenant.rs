//! Tenant data in the store (issue 13, first part): the configuration file seeds an empty
//! store; `sihai export` prints the store's tenant data with its revision; `sihai apply`
//! validates a file at its own lines, prints what it changes and applies it in one
//! transaction, refusing an export older than a change made since; the running daemon
//! uses an applied change for the next call, and a reload of an unchanged file does not
//! undo it.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::{Caller, Daemon, Phone, SIHAI, free_port};

/// Enterprise `acme`, its number 4001234567 on plan `main` ringing group `sales`,
/// whose only phone is `phone_uri`.
fn routing(phone_uri: &str) -> String {
    format!(
        r#"
[[trunk]]
name = "lab"
sources = ["127.0.0.1"]
gateway = "sip:{{number}}@127.0.0.1:{gateway}"

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
phones = [{{ uri = "{phone_uri}", capacity = 1 }}]
"#,
        gateway = free_port(),
    )
}

fn sihai(config: &Path, args: &[&str]) -> Output {
    Command::new(SIHAI)
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sihai")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn export(config: &Path) -> String {
    let out = sihai(config, &["export"]);
    assert!(out.status.success(), "export failed: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Waits (bounded) until the daemon has reloaded the tenant data `count` times.
#[test]
fn an_applied_export_rings_the_new_phone_on_the_next_call_and_a_stale_one_is_refused() {
    let mut old = Phone::start("uas_answer.xml", 1, 0);
    let mut new = Phone::start("uas_answer.xml", 2, 0);
    let old_uri = old.uri("13900000001");
    let new_uri = new.uri("13900000002");
    let daemon = Daemon::start_with("", &routing(&old_uri));
    let config = daemon.config_path();

    // The file seeded the empty store: the old phone answers.
    Caller::new(&daemon, "uac_answered.xml").run();
    old.finish(&daemon);

    let exported = export(&config);
    assert!(
        exported.starts_with("# sihai export: revision 1\n"),
        "{exported}"
    );
    assert!(exported.contains(&old_uri), "{exported}");
    let file = daemon.dir.path().join("acme.toml");
    std::fs::write(&file, exported.replace(&old_uri, &new_uri)).expect("write the edit");
    let file_arg = file.to_str().expect("utf-8 path");

    // A dry run shows the change and applies nothing.
    let dry = sihai(&config, &["apply", file_arg, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("~ group sales (acme)"),
        "{}",
        text(&dry.stdout)
    );
    assert!(export(&config).starts_with("# sihai export: revision 1\n"));

    let applied = sihai(&config, &["apply", file_arg]);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    assert!(
        text(&applied.stdout).contains("revision 2"),
        "{}",
        text(&applied.stdout)
    );
    daemon.wait_tenant_reloaded(1);
    // The very next call rings the new phone (the old one has exited: a call to it
    // would fail).
    Caller::new(&daemon, "uac_answered.xml").run();

    // The same export applied again changes nothing; an edit of the revision-1 export
    // made after the apply is stale: refused, naming what changed, nothing written.
    let again = sihai(&config, &["apply", file_arg]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("no changes"),
        "{}",
        text(&again.stdout)
    );
    let stale = daemon.dir.path().join("stale.toml");
    std::fs::write(&stale, exported.replace("capacity = 1", "capacity = 2")).expect("write");
    let refused = sihai(&config, &["apply", stale.to_str().expect("utf-8 path")]);
    assert!(!refused.status.success());
    let why = text(&refused.stderr);
    assert!(why.contains("group sales (changed at revision 2)"), "{why}");
    assert!(export(&config).starts_with("# sihai export: revision 2\n"));

    // A reload of the unchanged configuration file does not put the old phone back.
    daemon.hangup();
    daemon.wait_for_log(
        "configuration reloaded trigger=\"SIGHUP\"",
        1,
        Duration::from_secs(10),
    );
    Caller::new(&daemon, "uac_answered.xml").run();
    new.finish(&daemon);
    assert!(export(&config).contains(&new_uri));
}

#[test]
fn an_invalid_file_is_reported_at_its_own_lines_and_changes_nothing() {
    let daemon = Daemon::start_with("", &routing("sip:13900000001@127.0.0.1:5999"));
    let config = daemon.config_path();
    let before = export(&config);
    // An export applied unchanged, and the configuration file that seeded the store,
    // change nothing.
    let file = daemon.dir.path().join("unchanged.toml");
    std::fs::write(&file, &before).expect("write");
    for path in [file.as_path(), config.as_path()] {
        let out = sihai(&config, &["apply", path.to_str().expect("utf-8 path")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("no changes"),
            "{}",
            text(&out.stdout)
        );
    }
    let broken = before.replace("group = \"sales\"", "group = \"sale\"");
    let line = broken
        .lines()
        .position(|l| l == "group = \"sale\"")
        .expect("the plan's group line")
        + 1;
    let file = daemon.dir.path().join("broken.toml");
    std::fs::write(&file, &broken).expect("write");
    let out = sihai(&config, &["apply", file.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    let why = text(&out.stderr);
    assert!(
        why.contains(&format!("broken.toml:{line}:")) && why.contains("plan[0].group"),
        "the error names the file's line and the field:\n{why}"
    );
    assert!(why.contains("not applied"), "{why}");
    assert_eq!(export(&config), before, "nothing was applied");

    // A node setting is not tenant data.
    std::fs::write(&file, format!("{before}\n[log]\nlevel = \"info\"\n")).expect("write");
    let out = sihai(&config, &["apply", file.to_str().expect("utf-8 path")]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("[log] is a setting of the node's configuration file"),
        "{}",
        text(&out.stderr)
    );
}
