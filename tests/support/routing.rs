//! The routing part of a test daemon's configuration, written the way the sipp tests
//! need it: one trunk for 127.0.0.1, enterprise `acme`, its number 4001234567 routed by
//! plan `main`, and groups of phones that are sipp UASes (given by URI) or nobody.

use super::{CdrRow, Daemon, Phone, free_port};

/// The trunk (127.0.0.1 only), enterprise `acme` (plus `enterprise` settings), its
/// number 4001234567 routed by plan `main` (whose settings, group included, are
/// `plan`), then `rest`: groups, schedules. Phones given by number go nowhere.
pub fn routing(enterprise: &str, plan: &str, rest: &str) -> String {
    routing_via(free_port(), enterprise, plan, rest)
}

/// [`routing`] with the trunk's gateway, where phones given by number are called, on
/// 127.0.0.1:`gateway`.
pub fn routing_via(gateway: u16, enterprise: &str, plan: &str, rest: &str) -> String {
    routing_with_number(gateway, enterprise, "", plan, rest)
}

/// [`routing_via`] with extra settings of the number 4001234567 (`number`, e.g.
/// `max_concurrent = 1`).
pub fn routing_with_number(
    gateway: u16,
    enterprise: &str,
    number: &str,
    plan: &str,
    rest: &str,
) -> String {
    routing_from(&["127.0.0.1"], gateway, enterprise, number, plan, rest)
}

/// [`routing_with_number`] with the trunk's `sources` (addresses or CIDR networks)
/// instead of 127.0.0.1 alone.
pub fn routing_from(
    sources: &[&str],
    gateway: u16,
    enterprise: &str,
    number: &str,
    plan: &str,
    rest: &str,
) -> String {
    let sources = sources
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[[trunk]]
name = "lab"
sources = [{sources}]
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
{number}

[[plan]]
name = "main"
enterprise = "acme"
{plan}

{rest}
"#
    )
}

/// A `[[group]]` of `acme`.
pub fn group(name: &str, strategy: &str, phones: &[String]) -> String {
    format!(
        "[[group]]\nname = \"{name}\"\nenterprise = \"acme\"\nstrategy = \"{strategy}\"\nphones = [\n  {}\n]\n",
        phones.join(",\n  ")
    )
}

/// A phone given by URI, with extra settings such as `ring_timeout_s = 2`.
pub fn phone(uri: &str, settings: &str) -> String {
    if settings.is_empty() {
        format!("{{ uri = \"{uri}\" }}")
    } else {
        format!("{{ uri = \"{uri}\", {settings} }}")
    }
}

/// A phone nobody plays: a call routed to it finds nobody there (or rings a second
/// unanswered) and fails, so a test whose call must not go there notices.
pub fn nobody() -> String {
    phone(
        &format!("sip:13900000099@127.0.0.1:{}", free_port()),
        "ring_timeout_s = 1",
    )
}

/// The daemon's one CDR, once written.
pub fn only_cdr(daemon: &Daemon) -> CdrRow {
    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    rows.into_iter().next().expect("one CDR")
}

/// `uri:result` per phone tried, as `sihai cdr` prints them.
pub fn attempts(list: &[(&Phone, &str, &str)]) -> String {
    list.iter()
        .map(|(p, user, result)| format!("{}:{result}", p.uri(user)))
        .collect::<Vec<_>>()
        .join(", ")
}
