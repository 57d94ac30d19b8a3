//! The carrier's distribution in front of several sihai nodes (issue 15): Kamailio with
//! docs/kamailio-dispatcher.cfg spreads the carrier's calls over two sihai daemons,
//! probes them with OPTIONS, and stops giving calls to a node that died. Everything on
//! 127.0.0.1: sipp plays the carrier (through Kamailio) and the one bound phone both
//! nodes route to; each node has its own store and the same configuration.

mod support;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use support::kamailio::{Kamailio, PING_INTERVAL_S, PROBE_TIMEOUT_S};

use support::routing::{group, phone, routing};
use support::{Caller, Daemon, Phone, wait_for_cdrs};

fn node(port: u16) -> String {
    format!("sip:127.0.0.1:{port};transport=udp")
}

#[test]
fn kamailio_spreads_calls_over_the_nodes_and_stops_sending_to_a_dead_one() {
    // One phone both nodes ring: 6 calls while both are up, 6 once one is dead.
    let mut answers = Phone::start_for("uas_answer.xml", 12, 0, 90);
    // The same tenant configuration on both nodes; the trunk admits 127.0.0.1, where
    // Kamailio sends from.
    let config = routing(
        "",
        "group = \"sales\"",
        &group(
            "sales",
            "sequential",
            &[phone(&answers.uri("13900000001"), "")],
        ),
    );
    let node_a = Daemon::start_with("", &config);
    let node_b = Daemon::start_with("", &config);
    let mut kamailio = Kamailio::start(&[node_a.port, node_b.port]);

    // Both nodes start inactive (flags 9) and become active only when they answer an
    // OPTIONS probe with 200: these lines are sihai's answers to Kamailio's probes.
    let probed = Duration::from_secs(PING_INTERVAL_S + PROBE_TIMEOUT_S + 10);
    kamailio.wait_for_log(&format!("node {} is up", node(node_a.port)), probed);
    kamailio.wait_for_log(&format!("node {} is up", node(node_b.port)), probed);

    // Spread: one call after the other, round robin gives each node every other call.
    let run = Caller::new(&node_a, "uac_answered_routed.xml")
        .through(kamailio.port)
        .calls(6, 10)
        .at_most(1)
        .run();
    // sihai echoed Kamailio's Record-Route, so the ACK and BYE went through Kamailio.
    assert!(
        run.messages.contains(&format!(
            "Record-Route: <sip:127.0.0.1:{};lr",
            kamailio.port
        )),
        "no Record-Route of Kamailio in the answers:\n{}",
        run.messages
    );
    let on_a = wait_for_cdrs(&node_a.config_path(), 3);
    let on_b = wait_for_cdrs(&node_b.config_path(), 3);
    assert_eq!((on_a.len(), on_b.len()), (3, 3), "{on_a:#?}\n{on_b:#?}");
    assert!(
        on_a.iter().chain(&on_b).all(|r| r.outcome == "answered"),
        "{on_a:#?}\n{on_b:#?}"
    );

    // Node B dies. Its address is then held by a silent socket that records what
    // Kamailio still sends there: probes (unanswered), and no call.
    let b_port = node_b.port;
    let _ = node_b.kill9();
    let dead = UdpSocket::bind(("127.0.0.1", b_port)).expect("bind the dead node's port");
    dead.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let down = kamailio.wait_for_log(
        &format!("node {} is down", node(b_port)),
        Duration::from_secs(PING_INTERVAL_S + PROBE_TIMEOUT_S + 10),
    );
    assert!(
        down <= Duration::from_secs(PING_INTERVAL_S + PROBE_TIMEOUT_S + 2),
        "node B was marked down {down:?} after it died"
    );

    // New calls: every one answered, all by node A, none even tried on B.
    Caller::new(&node_a, "uac_answered_routed.xml")
        .through(kamailio.port)
        .calls(6, 10)
        .at_most(1)
        .run();
    answers.finish(&node_a);
    let on_a = wait_for_cdrs(&node_a.config_path(), 9);
    assert_eq!(on_a.len(), 9, "{on_a:#?}");
    assert!(on_a.iter().all(|r| r.outcome == "answered"), "{on_a:#?}");

    let mut arrived = Vec::new();
    let mut buf = vec![0u8; 65535];
    // What is queued there, and at least one more probe (one comes every interval).
    let started = Instant::now();
    let deadline = started + Duration::from_secs(PING_INTERVAL_S + 2);
    while Instant::now() < deadline {
        let probed = arrived.iter().any(|m: &String| m.starts_with("OPTIONS "));
        if probed && started.elapsed() >= Duration::from_millis(300) {
            break;
        }
        if let Ok(n) = dead.recv(&mut buf) {
            arrived.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let first_lines: Vec<&str> = arrived
        .iter()
        .map(|m| m.lines().next().unwrap_or(""))
        .collect();
    assert!(
        first_lines.iter().all(|l| l.starts_with("OPTIONS ")),
        "the dead node's address got more than probes: {first_lines:#?}"
    );
    assert!(
        !first_lines.is_empty(),
        "Kamailio stopped probing the dead node"
    );
    assert!(
        !kamailio.log_text().contains("failed call"),
        "a call was tried on a node that was down:\n{}",
        kamailio.log_text()
    );
}
