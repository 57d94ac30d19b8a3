//! `GET /metrics` through the built daemon: after sipp calls (answered, and refused by
//! a busy phone), the scraped figures agree with the CDRs the daemon wrote; the text
//! follows the exposition format line by line; only the operator may scrape; and every
//! metric the Grafana dashboard in docs/ queries is one the daemon exposes.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use support::api::{Session, add_user, api_key, http};
use support::routing::{group, phone, routing};
use support::{Caller, Daemon, Phone, free_port, repo_path};

/// Samples by name and label text (`method="INVITE",class="2xx"`), in order.
type Samples = BTreeMap<(String, String), f64>;

/// Parses the text, checking every line against the format: `# HELP`, `# TYPE`,
/// `# UNIT` and the final `# EOF`, or `name{labels} value`.
fn parse(text: &str) -> Samples {
    let mut samples = Samples::new();
    let mut typed = BTreeSet::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "the text ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_owned()), "{name} typed twice");
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').expect("closing }")),
            None => (series, ""),
        };
        assert!(
            name.starts_with("sihai_")
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "metric name {name:?}"
        );
        assert!(
            typed.iter().any(|t| name.starts_with(t.as_str())),
            "{name} has no # TYPE line before it"
        );
        assert!(
            samples
                .insert((name.to_owned(), labels.to_owned()), value)
                .is_none(),
            "{line} appears twice"
        );
    }
    samples
}

fn value(samples: &Samples, name: &str, labels: &str) -> f64 {
    *samples
        .get(&(name.to_owned(), labels.to_owned()))
        .unwrap_or_else(|| panic!("no {name}{{{labels}}}"))
}

/// The metric names a PromQL expression refers to (identifiers starting `sihai_`).
fn referenced(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("sihai_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

fn exprs(panel: &serde_json::Value, out: &mut Vec<String>) {
    if let Some(targets) = panel["targets"].as_array() {
        out.extend(
            targets
                .iter()
                .filter_map(|t| t["expr"].as_str().map(str::to_owned)),
        );
    }
    if let Some(panels) = panel["panels"].as_array() {
        for p in panels {
            exprs(p, out);
        }
    }
}

#[test]
fn scraped_metrics_agree_with_the_cdrs_and_feed_the_dashboard() {
    // acme's number rings a phone that answers; beta's rings one that is busy.
    let mut answers = Phone::start("uas_answer.xml", 6, 0);
    let mut busy = Phone::start("uas_busy.xml", 4, 0);
    let api_port = free_port();
    let routing = format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\n{}\n{}",
        routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[phone(&answers.uri("13900000001"), "")]
            ),
        ),
        "[[enterprise]]\nid = \"beta\"\nname = \"Beta\"\n\
         [[number]]\nnumber = \"4007654321\"\nenterprise = \"beta\"\n\
         status = \"active\"\nplan = \"beta-main\"\n\
         [[plan]]\nname = \"beta-main\"\nenterprise = \"beta\"\ngroup = \"busy\"\n"
            .to_owned()
            + &group("busy", "sequential", &[phone(&busy.uri("13900000002"), "")])
                .replace("enterprise = \"acme\"", "enterprise = \"beta\""),
    );
    let daemon = Daemon::start_with("", &routing);
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "ops", "operator", None);
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    let ops = api_key(&config, "ops");

    // Only the operator scrapes.
    assert_eq!(http(addr, "GET", "/metrics", &[], None).status, 401);
    let acme = Session::login(addr, "acme-admin");
    assert_eq!(acme.get("/metrics").status, 403);

    Caller::new(&daemon, "uac_answered.xml").calls(6, 6).run();
    Caller::refused(&daemon, 486)
        .dialling("4007654321")
        .calls(4, 4)
        .run();
    answers.finish(&daemon);
    busy.finish(&daemon);
    let cdrs = daemon.wait_for_cdrs(10);

    let bearer = format!("Bearer {ops}");
    let reply = http(addr, "GET", "/metrics", &[("Authorization", &bearer)], None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        reply.header("Content-Type")
    );
    let samples = parse(&reply.body);

    // Calls, as the CDRs have them.
    let answered = cdrs.iter().filter(|c| c.outcome == "answered").count() as f64;
    let busy_calls = cdrs.iter().filter(|c| c.outcome == "busy").count() as f64;
    assert_eq!((answered, busy_calls), (6.0, 4.0), "{cdrs:?}");
    assert_eq!(value(&samples, "sihai_calls_offered_total", ""), 10.0);
    assert_eq!(
        value(&samples, "sihai_calls_ended_total", r#"outcome="answered""#),
        answered
    );
    assert_eq!(
        value(&samples, "sihai_calls_ended_total", r#"outcome="busy""#),
        busy_calls
    );
    let talk: u32 = cdrs.iter().map(|c| c.talk_s).sum();
    assert_eq!(
        value(&samples, "sihai_call_talk_seconds_total", ""),
        f64::from(talk)
    );
    assert_eq!(
        value(
            &samples,
            "sihai_hunt_attempts_total",
            r#"result="answered""#
        ),
        answered
    );
    assert_eq!(
        value(&samples, "sihai_hunt_attempts_total", r#"result="busy""#),
        busy_calls
    );
    assert_eq!(
        value(&samples, "sihai_session_request_delay_seconds_count", ""),
        10.0
    );
    assert_eq!(
        value(&samples, "sihai_answer_delay_seconds_count", ""),
        answered
    );
    assert_eq!(
        value(
            &samples,
            "sihai_answer_delay_seconds_bucket",
            r#"le="+Inf""#
        ),
        answered
    );
    assert_eq!(value(&samples, "sihai_calls", r#"state="setup""#), 0.0);
    assert_eq!(value(&samples, "sihai_calls", r#"state="talking""#), 0.0);

    // SIP: ten INVITEs in, a 2xx for each answered and a 486 passed back for each busy.
    assert!(
        value(
            &samples,
            "sihai_sip_requests_received_total",
            r#"method="INVITE""#
        ) >= 10.0
    );
    assert_eq!(
        value(
            &samples,
            "sihai_sip_replies_sent_total",
            r#"method="INVITE",class="2xx""#
        ),
        answered
    );
    assert_eq!(
        value(
            &samples,
            "sihai_sip_replies_sent_total",
            r#"method="INVITE",class="4xx""#
        ),
        busy_calls
    );
    // And one INVITE to a phone per call, each answered by its class.
    assert_eq!(
        value(
            &samples,
            "sihai_sip_requests_sent_total",
            r#"method="INVITE""#
        ),
        10.0
    );
    assert_eq!(
        value(
            &samples,
            "sihai_sip_replies_received_total",
            r#"method="INVITE",class="4xx""#
        ),
        busy_calls
    );

    // The store committed every CDR.
    assert_eq!(value(&samples, "sihai_store_queued_cdrs", ""), 0.0);
    assert!(value(&samples, "sihai_store_commit_seconds_count", "") >= 1.0);
    assert_eq!(
        value(&samples, "sihai_store_commit_failures_total", ""),
        0.0
    );

    // The API counted its own requests by route template: the two refusals above.
    assert_eq!(
        value(
            &samples,
            "sihai_api_requests_total",
            r#"route="/metrics",status="401""#
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "sihai_api_requests_total",
            r#"route="/metrics",status="403""#
        ),
        1.0
    );

    // Every metric the dashboard queries is exposed.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_path("docs/grafana/sihai-dashboard.json"))
            .expect("read the dashboard"),
    )
    .expect("the dashboard is JSON");
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        exprs(panel, &mut queries);
    }
    assert!(queries.len() >= 10, "{queries:?}");
    let exposed: BTreeSet<&str> = samples.keys().map(|(name, _)| name.as_str()).collect();
    for query in &queries {
        let names = referenced(query);
        assert!(!names.is_empty(), "{query} queries no sihai metric");
        for name in names {
            assert!(
                exposed.contains(name.as_str()),
                "{query}: {name} is not exposed"
            );
        }
    }
    daemon.stop();
}
