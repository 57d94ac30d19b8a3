//! What a reload may change: the one rule, used by the daemon when it reloads and by
//! `sihai check` when it tells an operator what a change will need.
//!
//! Most settings take effect on reload (routing, enterprises, groups, prompts, alerts,
//! the log level...). A few are built into something that lives as long as the process
//! — bound sockets, the store's writer, the RTP port pool, the transaction timers that
//! pace transactions in flight — and changing them needs a restart. A reload whose file
//! changes one of those is rejected whole, like a file with an error: the running
//! configuration stays and nothing is half-applied, and each such setting is reported
//! as `FILE:LINE:COL: FIELD: ... needs a restart`.

use std::fmt::Write as _;

use crate::diagnostics::{Diagnostics, Source};
use crate::document;
use crate::{Config, ConfigErrors};

/// How a setting behaves when the configuration is reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReload {
    /// The new value is used from the reload on (by new calls, where it is per call).
    Applied,
    /// A reload that changes it is rejected; restart the daemon to change it.
    NeedsRestart,
}

/// One setting (or section) of the file and what a reload does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadRule {
    /// The field as written in the file: `sip.listen`, `media.rtp_ports`, `group`.
    pub field: &'static str,
    pub on_reload: OnReload,
    /// Why, or how it takes effect, for `sihai check`.
    pub note: &'static str,
}

/// The running value of a restart-only setting, rendered for comparison and messages.
type Render = fn(&Config) -> String;

/// Every setting of the file, in the file's order. A field not listed is covered by
/// the entry whose field is its prefix (`group` covers `group[0].phones`); a test checks
/// that every setting of the sample configuration is covered.
const RULES: &[(&str, Rule)] = &[
    (
        "sip.user_agent",
        Rule::Applied("in messages sent from the reload on"),
    ),
    (
        "sip.max_requests_per_source",
        Rule::Applied("to requests received from the reload on"),
    ),
    (
        "sip.scanner_user_agents",
        Rule::Applied("to requests received from the reload on"),
    ),
    (
        "sip.drain_timeout_s",
        Rule::Applied("by a drain that starts after the reload"),
    ),
    (
        "sip.listen",
        // Only the sockets (transport and address) are compared: a listener's
        // `untrusted` policy is applied on reload.
        Rule::Restart(
            "the sockets are bound at start (a listener's untrusted policy is applied on reload)",
            listen,
        ),
    ),
    (
        "sip.timers.t1_ms",
        Rule::Restart("they pace the transactions in flight", |c| {
            ms(c.sip.timers.t1)
        }),
    ),
    (
        "sip.timers.t2_ms",
        Rule::Restart("they pace the transactions in flight", |c| {
            ms(c.sip.timers.t2)
        }),
    ),
    (
        "sip.timers.t4_ms",
        Rule::Restart("they pace the transactions in flight", |c| {
            ms(c.sip.timers.t4)
        }),
    ),
    (
        "sip.tcp.idle_timeout_s",
        Rule::Restart("the TCP transport is set up with it at start", |c| {
            format!("{}", c.sip.tcp.idle_timeout.as_secs())
        }),
    ),
    (
        "sip.tcp.max_connections",
        Rule::Restart("the TCP transport is set up with it at start", |c| {
            c.sip.tcp.max_connections.to_string()
        }),
    ),
    (
        "sip.tcp.max_message_bytes",
        Rule::Restart("the TCP transport is set up with it at start", |c| {
            c.sip.tcp.max_message_bytes.to_string()
        }),
    ),
    (
        "log.level",
        Rule::Applied("at once (unless RUST_LOG is set)"),
    ),
    (
        "log.format",
        Rule::Restart("the logger is set up with it at start", |c| {
            format!("{:?}", c.log.format.to_string())
        }),
    ),
    (
        "store.sqlite",
        Rule::Restart("the store is opened at start", |c| {
            format!("{:?}", c.store.sqlite.display().to_string())
        }),
    ),
    (
        "store.url",
        Rule::Restart("the store is opened at start", |c| {
            // Shown in the refusal: the database, never the credentials before it.
            c.store.postgres.as_ref().map_or_else(
                || "SQLite".to_owned(),
                |p| {
                    let database = p.url.rsplit_once('@').map_or(p.url.as_str(), |(_, d)| d);
                    format!("{database:?} as node {:?}", p.node)
                },
            )
        }),
    ),
    (
        "store.spool",
        Rule::Restart("the store is opened at start", |c| {
            c.store.postgres.as_ref().map_or_else(
                || "no spool (SQLite)".to_owned(),
                |p| format!("{:?}", p.spool.display().to_string()),
            )
        }),
    ),
    (
        "store.commit_interval_ms",
        Rule::Restart("the store is opened at start", |c| {
            ms(c.store.commit_interval)
        }),
    ),
    ("alerts", Rule::Applied("from the next delivery attempt")),
    (
        "api.listen",
        Rule::Restart("the API's listener is bound at start", |c| {
            c.api
                .as_ref()
                .map_or_else(|| "no API".to_owned(), |a| a.listen.to_string())
        }),
    ),
    (
        "api.tls_certificate",
        Rule::Restart("the API's certificate is loaded at start", |c| {
            c.api.as_ref().and_then(|a| a.tls.as_ref()).map_or_else(
                || "none".to_owned(),
                |t| t.certificate.display().to_string(),
            )
        }),
    ),
    (
        "api.tls_private_key",
        Rule::Restart("the API's key is loaded at start", |c| {
            c.api.as_ref().and_then(|a| a.tls.as_ref()).map_or_else(
                || "none".to_owned(),
                |t| t.private_key.display().to_string(),
            )
        }),
    ),
    (
        "api.session_hours",
        Rule::Applied("to sessions opened from then on"),
    ),
    (
        "media.relay",
        Rule::Restart("the relay's port pool is set up at start", |c| {
            c.media.relay.to_string()
        }),
    ),
    (
        "media.address",
        Rule::Restart("the relay's port pool is set up at start", |c| {
            format!("{:?}", c.media.address.to_string())
        }),
    ),
    (
        "media.rtp_ports",
        Rule::Restart("the relay's port pool is set up at start", |c| {
            format!(
                "\"{}-{}\"",
                c.media.rtp_ports.start(),
                c.media.rtp_ports.end()
            )
        }),
    ),
    (
        "media.media_timeout",
        Rule::Applied("by calls set up after"),
    ),
    (
        "media.recordings",
        Rule::Applied("by recordings started after; the retention sweep runs at once"),
    ),
    ("media.prompts", Rule::Applied("prompts are read again")),
    ("prompt", Rule::Applied("prompts are read again")),
    ("trunk", Rule::Applied("by calls set up after")),
    // Billing is applied like routing: a call is rated by the tariff it was set up
    // with, and the account job reads the policies afresh on its next run.
    (
        "billing.reservation_minutes",
        Rule::Applied("by reservations made after (calls in progress too, at their next chunk)"),
    ),
    (
        "billing.lifecycle_interval_s",
        Rule::Applied("from the lifecycle job's next run"),
    ),
    (
        "billing",
        Rule::Applied("account policies: by admissions after and the lifecycle job's next run"),
    ),
    (
        "tariff",
        Rule::Applied("by calls set up after; calls in progress keep the tariff they started with"),
    ),
    (
        "enterprise",
        Rule::Applied(
            "by calls set up after (a tariff too: calls in progress keep theirs); the \
             retention sweep runs at once; api_sources by the admin API's next request",
        ),
    ),
    (
        "number",
        Rule::Applied("by calls set up after (a tariff too: calls in progress keep theirs)"),
    ),
    ("plan", Rule::Applied("by calls set up after")),
    ("menu", Rule::Applied("by calls set up after")),
    (
        "group",
        Rule::Applied("by calls set up after; channels in use carry over by phone"),
    ),
    ("extension", Rule::Applied("by calls set up after")),
    ("schedule", Rule::Applied("by calls set up after")),
];

#[derive(Clone, Copy)]
enum Rule {
    Applied(&'static str),
    /// Why, and the running value.
    Restart(&'static str, Render),
}

/// Every setting and what a reload does with it, in the file's order.
pub fn reload_rules() -> impl Iterator<Item = ReloadRule> {
    RULES.iter().map(|(field, rule)| match rule {
        Rule::Applied(note) => ReloadRule {
            field,
            on_reload: OnReload::Applied,
            note,
        },
        Rule::Restart(note, _) => ReloadRule {
            field,
            on_reload: OnReload::NeedsRestart,
            note,
        },
    })
}

/// What a reload does with `field` (a dotted path as in error messages, entries'
/// indexes included: `group[2].phones`); `None` for a field no rule covers.
pub fn rule_for(field: &str) -> Option<ReloadRule> {
    reload_rules().find(|rule| covers(rule.field, field))
}

fn covers(rule: &str, field: &str) -> bool {
    field
        .strip_prefix(rule)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// The rules as text for `sihai check`: one line per setting.
pub fn describe_reload_rules() -> String {
    let mut text = String::new();
    for rule in reload_rules() {
        let what = match rule.on_reload {
            OnReload::Applied => "applied on reload",
            OnReload::NeedsRestart => "needs a restart",
        };
        let _ = writeln!(text, "  {:<28} {what}: {}", rule.field, rule.note);
    }
    text
}

impl Config {
    /// Validates `text` as a replacement for the `running` configuration: errors as
    /// [`Config::from_str`] gives them, else one per restart-only setting whose value
    /// differs (`FIELD: changed from A to B, which needs a restart`), located where the
    /// new file writes it (line 1 if it left the setting out). `Ok` means every change
    /// can be applied on reload.
    pub fn reload_from_str(
        text: &str,
        origin: &str,
        running: &Config,
    ) -> Result<Config, ConfigErrors> {
        let config = Config::from_str(text, origin)?;
        Config::reload_from_str_checked(text, origin, running, &config)?;
        Ok(config)
    }

    /// Refuses `config` (read from `text`) as a replacement for `running` when it changes
    /// a restart-only setting, each reported at its line in `text`.
    fn reload_from_str_checked(
        text: &str,
        origin: &str,
        running: &Config,
        config: &Config,
    ) -> Result<(), ConfigErrors> {
        let changed: Vec<(&str, String, String)> = RULES
            .iter()
            .filter_map(|(field, rule)| match rule {
                Rule::Restart(_, render) => {
                    let (was, now) = (render(running), render(config));
                    (was != now).then_some((*field, was, now))
                }
                Rule::Applied(_) => None,
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let mut diagnostics = Diagnostics::new(Source::new(origin, text));
        let spans = document::key_spans(text);
        for (field, was, now) in changed {
            let span = spans
                .iter()
                .find(|(path, _)| path == field)
                .map(|(_, span)| span.clone());
            diagnostics.report(
                span,
                field,
                format!("changed from {was} to {now}, which needs a restart"),
            );
        }
        diagnostics.finish(None)
    }

    /// [`Config::reload_from_str`] for a configuration assembled from the node's file
    /// and the tenant data ([`Config::from_parts`]): the same rules, restart-only
    /// settings being node settings.
    pub fn reload_from_parts(
        node_text: &str,
        node_origin: &str,
        tenant_text: &str,
        tenant_origin: &str,
        running: &Config,
    ) -> Result<Config, ConfigErrors> {
        let config = Config::from_parts(node_text, node_origin, tenant_text, tenant_origin)?;
        // Every restart-only setting is a node setting: check them on the node's file.
        match Config::reload_from_str_checked(node_text, node_origin, running, &config) {
            Ok(()) => Ok(config),
            Err(errors) => Err(errors),
        }
    }

    /// [`Config::reload_from_str`] on a file.
    pub fn reload(path: &std::path::Path, running: &Config) -> Result<Config, ConfigErrors> {
        let text = crate::read_text(path)?;
        Config::reload_from_str(&text, &path.display().to_string(), running)
    }
}

fn ms(duration: std::time::Duration) -> String {
    duration.as_millis().to_string()
}

fn listen(config: &Config) -> String {
    let listen: Vec<String> = config
        .sip
        .listen
        .iter()
        .map(|l| format!("{} {}", l.transport.to_string().to_lowercase(), l.address))
        .collect();
    format!("[{}]", listen.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[sip]
user_agent = "a"
[[sip.listen]]
transport = "udp"
address = "127.0.0.1:5060"

[log]
level = "info"

[media]
relay = true
rtp_ports = "20000-20099"
"#;

    fn running() -> Config {
        Config::from_str(BASE, "running.toml").expect("valid")
    }

    #[test]
    fn applied_settings_reload() {
        let text = BASE
            .replace("user_agent = \"a\"", "user_agent = \"b\"")
            .replace("level = \"info\"", "level = \"debug\"")
            + "[alerts]\nmax_attempts = 2\n";
        let config = Config::reload_from_str(&text, "new.toml", &running()).expect("reloadable");
        assert_eq!(config.sip.user_agent, "b");
        assert_eq!(config.log.level, "debug");
        assert_eq!(config.alerts.max_attempts, 2);
    }

    #[test]
    fn a_changed_listener_needs_a_restart_and_names_its_line() {
        let text = BASE.replace("127.0.0.1:5060", "127.0.0.1:5070");
        let errors = Config::reload_from_str(&text, "new.toml", &running()).unwrap_err();
        assert_eq!(
            errors.to_string(),
            "new.toml:4:7: sip.listen: changed from [udp 127.0.0.1:5060] to \
             [udp 127.0.0.1:5070], which needs a restart"
        );
    }

    #[test]
    fn every_restart_only_change_is_reported() {
        let text = BASE.replace("20000-20099", "30000-30099").replace(
            "[log]",
            "[sip.timers]\nt1_ms = 250\n[store]\nsqlite = \"other.db\"\n[log]",
        );
        let errors = Config::reload_from_str(&text, "new.toml", &running()).unwrap_err();
        let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["sip.timers.t1_ms", "store.sqlite", "media.rtp_ports"]
        );
        assert!(errors.to_string().contains(
            "media.rtp_ports: changed from \"20000-20099\" to \"30000-30099\", which needs a restart"
        ));
    }

    #[test]
    fn a_changed_log_format_needs_a_restart() {
        let text = BASE.replace("level = \"info\"", "level = \"info\"\nformat = \"json\"");
        let errors = Config::reload_from_str(&text, "new.toml", &running()).unwrap_err();
        assert_eq!(
            errors.to_string(),
            "new.toml:10:1: log.format: changed from \"text\" to \"json\", which needs a restart"
        );
    }

    #[test]
    fn a_restart_only_setting_left_out_is_reported_at_line_one() {
        // Leaving the range out means the default, which differs from the running one.
        let text = BASE.replace("rtp_ports = \"20000-20099\"\n", "");
        let errors = Config::reload_from_str(&text, "new.toml", &running()).unwrap_err();
        assert_eq!(errors.errors.len(), 1);
        let error = &errors.errors[0];
        assert_eq!((error.line, error.column), (1, 1));
        assert_eq!(error.field, "media.rtp_ports");
    }

    #[test]
    fn errors_in_the_file_come_before_the_comparison() {
        let text = BASE.replace("level = \"info\"", "level = \"loud\"");
        let errors = Config::reload_from_str(&text, "new.toml", &running()).unwrap_err();
        assert_eq!(errors.errors.len(), 1);
        assert_eq!(errors.errors[0].field, "log.level");
    }

    #[test]
    fn rules_cover_fields_by_prefix() {
        let rule = |field| rule_for(field).map(|r| r.on_reload);
        assert_eq!(rule("group[2].phones[0].capacity"), Some(OnReload::Applied));
        assert_eq!(rule("sip.listen[1].address"), Some(OnReload::NeedsRestart));
        assert_eq!(rule("media.relay"), Some(OnReload::NeedsRestart));
        assert_eq!(rule("alerts.max_attempts"), Some(OnReload::Applied));
        assert_eq!(rule("groups"), None, "a prefix only at a field boundary");
    }

    /// Every setting the sample configuration writes has a rule: a new setting cannot
    /// be added without deciding what a reload does with it.
    #[test]
    fn every_setting_of_the_sample_configuration_has_a_rule() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/sihai.toml");
        let text = std::fs::read_to_string(path).expect("read the sample configuration");
        let spans = document::key_spans(&text);
        assert!(spans.len() > 50, "the sample's fields are indexed");
        for (field, _) in spans {
            // Table headers (`sip`, `sip.timers`) contain settings, and are not one.
            if RULES
                .iter()
                .any(|(rule, _)| rule.starts_with(&format!("{field}.")))
            {
                continue;
            }
            assert!(rule_for(&field).is_some(), "no reload rule for {field}");
        }
    }

    #[test]
    fn the_description_lists_both_kinds() {
        let text = describe_reload_rules();
        assert!(text.contains("sip.listen"));
        assert!(text.contains("needs a restart"));
        assert!(text.contains("log.level"));
        assert!(text.contains("applied on reload"));
        assert_eq!(text.lines().count(), RULES.len());
    }
}
