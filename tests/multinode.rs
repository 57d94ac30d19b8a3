//! Several nodes, one system of record (issue 15): two sihai daemons on one PostgreSQL
//! database (a server of the test's own, so that it can restart it), Kamailio with
//! docs/kamailio-dispatcher.cfg in front, sipp as the carrier and the phones. In order:
//! calls spread over both nodes; a change made through node A's API is running on node B
//! within a second; one enterprise's balance drained by calls on both nodes at once is
//! spent once, never more; node B killed with SIGKILL during calls: new calls go to A,
//! and B settles its calls once when it comes back; PostgreSQL restarted during calls:
//! no CDR lost, nothing charged twice. `sihai account verify` is clean after each.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::api::{Session, add_user};
use support::kamailio::{Kamailio, PING_INTERVAL_S, PROBE_TIMEOUT_S};
use support::postgres::PgServer;
use support::routing::{group, phone, routing};
use support::{Caller, Daemon, Phone, TENANT_RELOADED, free_port, read_cdrs, sihai_ok};

/// `acme` billed per second at ¥0.60/min (¥0.01 a second), its group ringing `phone`.
fn billed_routing(phone_uri: &str) -> String {
    routing(
        "tariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"0.01\"\n\
         suspend_below = \"0\"\nlow_balance_warning = \"0\"\nmin_recharge = \"0.01\"\n",
        "group = \"sales\"",
        &format!(
            "{}\n[billing]\nreservation_minutes = 1\nlifecycle_interval_s = 1\n\n\
             [[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
            group("sales", "sequential", &[phone(phone_uri, "capacity = 50")])
        ),
    )
}

/// Starts a node on the shared database as `node`, with `extra` node settings.
fn start_node(url: &str, node: &str, routing: &str, extra: &str) -> Daemon {
    let (url, node, extra) = (url.to_owned(), node.to_owned(), extra.to_owned());
    Daemon::start_edited("", routing, move |text| {
        let mut out = String::new();
        for line in text.lines() {
            if let Some(db) = line.strip_prefix("sqlite = ") {
                // The node's own directory keeps its spool (CDRs written while the
                // database is unreachable), next to where its SQLite file would be.
                let dir = Path::new(db.trim_matches('"'))
                    .parent()
                    .expect("the node's directory")
                    .join("spool");
                out.push_str(&format!(
                    "url = \"{url}\"\nnode = \"{node}\"\nspool = \"{}\"\n",
                    dir.display()
                ));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        format!("{extra}\n{out}")
    })
}

/// Calls the node answered, from its log.
fn answered_on(node: &Daemon) -> usize {
    node.plain_log().matches("call answered").count()
}

/// The sum of the CDRs' costs in fen, and how many CDRs.
fn spent_fen(config: &Path) -> (i64, usize) {
    let cdrs = read_cdrs(config);
    let fen = cdrs
        .iter()
        .filter(|c| !c.cost.is_empty())
        .map(|c| {
            let (yuan, fen) = c.cost.split_once('.').expect("yuan.fen");
            yuan.parse::<i64>().expect("yuan") * 100 + fen.parse::<i64>().expect("fen")
        })
        .sum();
    (fen, cdrs.len())
}

/// `sihai account verify` is clean.
fn verified(config: &Path) {
    sihai_ok(config, &["account", "verify"]);
}

/// The balance as `sihai account show --json` gives it, in fen.
fn balance_fen(config: &Path) -> i64 {
    let text = sihai_ok(config, &["account", "show", "acme", "--json"]);
    let rest = text
        .split_once("\"balance\":")
        .expect("a balance")
        .1
        .trim_start();
    let value = rest
        .trim_start_matches('"')
        .split('"')
        .next()
        .expect("value");
    let negative = value.starts_with('-');
    let (yuan, fen) = value
        .trim_start_matches('-')
        .split_once('.')
        .expect("yuan.fen");
    let fen = yuan.parse::<i64>().expect("yuan") * 100 + fen[..2].parse::<i64>().expect("fen");
    if negative { -fen } else { fen }
}

#[test]
fn two_nodes_share_one_postgres_database_behind_kamailio() {
    let pg = PgServer::start("multinode");
    let url = pg.database("sihai");
    let mut first_phone = Phone::start_for("uas_answer.xml", 6, 0, 120);
    let config = billed_routing(&first_phone.uri("13900000001"));
    let api_port = free_port();
    let node_a = start_node(
        &url,
        "node-a",
        &config,
        &format!("[api]\nlisten = \"127.0.0.1:{api_port}\"\n"),
    );
    let node_b = start_node(&url, "node-b", &config, "");
    let a_config = node_a.config_path();
    // A recharge through either node's configuration lands in the one database.
    sihai_ok(
        &a_config,
        &["account", "recharge", "acme", "100", "--ref", "bank-1"],
    );
    let mut kamailio = Kamailio::start(&[node_a.port, node_b.port]);
    let probed = Duration::from_secs(PING_INTERVAL_S + PROBE_TIMEOUT_S + 10);
    for port in [node_a.port, node_b.port] {
        kamailio.wait_for_log(
            &format!("node sip:127.0.0.1:{port};transport=udp is up"),
            probed,
        );
    }

    // 1. Spread: round robin gives each node every other call; one database has all six.
    Caller::new(&node_a, "uac_answered_routed.xml")
        .through(kamailio.port)
        .calls(6, 10)
        .at_most(1)
        .run();
    first_phone.finish(&node_a);
    assert_eq!((answered_on(&node_a), answered_on(&node_b)), (3, 3));
    let (_, cdrs) = spent_fen(&a_config);
    assert_eq!(cdrs, 6);
    verified(&a_config);

    // 2. A change through node A's API runs on node B within a second (pushed by
    // LISTEN/NOTIFY; B's own poll is once a second): B's next call rings the new phone.
    let second_phone = Phone::start_for("uas_answer.xml", 1000, 0, 300);
    add_user(&a_config, "acme-admin", "enterprise_admin", Some("acme"));
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    let admin = Session::login(addr, "acme-admin");
    let reloads_before = node_b.plain_log().matches(TENANT_RELOADED).count();
    let put = admin.put(
        "/api/v1/enterprises/acme/groups/sales",
        &format!(
            r#"{{"strategy":"sequential","phones":[{{"uri":"{}","capacity":50}}]}}"#,
            second_phone.uri("13900000002")
        ),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let changed = Instant::now();
    while node_b.plain_log().matches(TENANT_RELOADED).count() == reloads_before {
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "node B did not reload node A's change within a second:\n{}",
            node_b.plain_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Caller::new(&node_b, "uac_answered.xml").run();
    assert_eq!(answered_on(&node_b), 4);

    // 3. The balance drained by calls on both nodes at once: ¥0.10 covers ten seconds
    // of one call; four callers (two on each node) want it at the same moment. Together
    // they never spend more than it covers, nor less than it less one increment.
    let spent_before = spent_fen(&a_config).0;
    let balance = balance_fen(&a_config);
    sihai_ok(
        &a_config,
        &[
            "account",
            "adjust",
            "acme",
            &format!("-{}.{:02}", (balance - 10) / 100, (balance - 10) % 100),
            "--ref",
            "drain",
            "--note",
            "leave ten fen",
        ],
    );
    assert_eq!(balance_fen(&a_config), 10);
    let drains: Vec<_> = [(&node_a, "13800138101"), (&node_a, "13800138102")]
        .into_iter()
        .chain([(&node_b, "13800138103"), (&node_b, "13800138104")])
        .map(|(node, caller)| {
            Caller::new(node, "uac_phone_hangs_up.xml")
                .caller(caller)
                .within_s(40)
                .spawn()
        })
        .collect();
    let started = Instant::now();
    for mut drain in drains {
        // Refused (480) or cut when the ten fen run out: either ends the sipp run.
        assert!(drain.wait_exit(Duration::from_secs(60)).is_some());
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let spent = spent_fen(&a_config).0 - spent_before;
    assert!(
        (9..=10).contains(&spent),
        "calls on two nodes spent {spent} fen of a 10 fen balance"
    );
    assert!(balance_fen(&a_config) >= 0);
    verified(&a_config);

    // 4. Node B killed during calls: Kamailio marks it down within the probe interval,
    // every new call goes to A, and B settles the calls it had open, once, on restart.
    sihai_ok(
        &a_config,
        &["account", "recharge", "acme", "100", "--ref", "bank-2"],
    );
    let held_on_b = Caller::new(&node_b, "uac_answered.xml")
        .caller("13800138201")
        .calls(2, 10)
        .talking_ms(30_000)
        .within_s(60)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered_on(&node_b) < 6 {
        assert!(Instant::now() < deadline, "B did not answer its two calls");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Long enough for B to stamp its sign of life after the answers (every second while
    // it holds reservations): the crash policy charges up to it.
    std::thread::sleep(Duration::from_millis(2500));
    let b_port = node_b.port;
    let (b_dir, _) = node_b.kill9();
    drop(held_on_b);
    kamailio.wait_for_log(
        &format!("node sip:127.0.0.1:{b_port};transport=udp is down"),
        Duration::from_secs(PING_INTERVAL_S + PROBE_TIMEOUT_S + 10),
    );
    let on_a = answered_on(&node_a);
    Caller::new(&node_a, "uac_answered_routed.xml")
        .through(kamailio.port)
        .calls(4, 10)
        .at_most(1)
        .run();
    assert_eq!(answered_on(&node_a), on_a + 4);
    let node_b = Daemon::restart(b_dir, b_port);
    let settled = node_b.plain_log();
    assert!(
        settled.contains("settled the calls the previous run left open calls=2"),
        "{settled}"
    );
    verified(&a_config);
    let cdrs = read_cdrs(&a_config);
    let killed: Vec<_> = cdrs.iter().filter(|c| c.caller == "13800138201").collect();
    assert_eq!(killed.len(), 2, "{killed:#?}");
    assert!(killed.iter().all(|c| c.billed_seconds >= 1), "{killed:#?}");

    // 5. PostgreSQL restarted while calls go on: every call has its CDR, and the books
    // still add up (nothing charged twice, nothing lost).
    let (_, before) = spent_fen(&a_config);
    let mut load = Caller::new(&node_a, "uac_answered.xml")
        .caller("13800138301")
        .calls(20, 4)
        .talking_ms(500)
        .within_s(60)
        .spawn();
    std::thread::sleep(Duration::from_millis(1500));
    pg.restart();
    // Calls set up while the database was down are refused with 503, the others
    // answered: sipp's verdict does not matter, their CDRs do.
    assert!(load.wait_exit(Duration::from_secs(90)).is_some());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, after) = spent_fen(&a_config);
        if after == before + 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 20 CDRs written after the database restart:\n{}",
            after - before,
            node_a.plain_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    verified(&a_config);
    // Whatever the node spooled while the database was away is committed and gone.
    let spool = node_a.dir.path().join("spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".jsonl") || n.ends_with(".corrupt"))
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "spool files left: {left:?}");
    drop(second_phone);
    drop(node_b);
}
