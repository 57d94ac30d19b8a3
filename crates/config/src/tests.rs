//! End-to-end checks of `Config::from_str` and `Config::load`: for every kind of error,
//! the exact line, column, field and message an operator will see.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sihai_sip::net::Transport;

use super::*;

const ORIGIN: &str = "test.toml";

/// Joins lines with `\n`, so line N of the file is `lines[N - 1]`.
fn file(lines: &[impl AsRef<str>]) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line.as_ref());
        text.push('\n');
    }
    text
}

fn parse(lines: &[impl AsRef<str>]) -> Result<Config, ConfigErrors> {
    Config::from_str(&file(lines), ORIGIN)
}

fn errors(lines: &[impl AsRef<str>]) -> Vec<ConfigError> {
    match parse(lines) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => errors.errors,
    }
}

/// Asserts exactly one error, at `line:column`, about `field`, whose message contains
/// `message`.
#[track_caller]
fn assert_one_error(
    lines: &[impl AsRef<str>],
    line: usize,
    column: usize,
    field: &str,
    message: &str,
) {
    let errors = errors(lines);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    let error = &errors[0];
    assert_eq!(
        (
            error.file.as_str(),
            error.line,
            error.column,
            error.field.as_str()
        ),
        (ORIGIN, line, column, field),
        "{error}"
    );
    assert!(error.message.contains(message), "{error}");
}

/// A valid file; tests append to it or replace lines.
const MINIMAL: &[&str] = &[
    "[sip]",                        // 1
    "[[sip.listen]]",               // 2
    "transport = \"udp\"",          // 3
    "address = \"127.0.0.1:5060\"", // 4
];

/// `MINIMAL` followed by `extra`, which starts at line 5.
fn minimal_with(extra: &[&str]) -> Vec<String> {
    MINIMAL
        .iter()
        .chain(extra)
        .map(|line| line.to_string())
        .collect()
}

fn address(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

// ---- valid files ------------------------------------------------------------------

#[test]
fn sample_configuration_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/sihai.toml");
    let config = Config::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.sip.user_agent, "sihai");
    assert_eq!(
        config.sip.listen,
        vec![
            Listen {
                transport: Transport::Udp,
                address: address("127.0.0.1:5060"),
                untrusted: Untrusted::Reject,
            },
            Listen {
                transport: Transport::Tcp,
                address: address("127.0.0.1:5060"),
                untrusted: Untrusted::Reject,
            },
        ]
    );
    // The sample spells out every default; the code must agree with its comments.
    assert_eq!(config.sip.timers, Timers::default());
    assert_eq!(config.sip.tcp, TcpSettings::default());
    assert_eq!(config.sip.max_requests_per_source, 5_000);
    assert!(config.sip.scanner_user_agents.is_empty());
    assert_eq!(config.sip.drain_timeout, Duration::from_secs(30));
    assert_eq!(config.log, LogConfig::default());
}

#[test]
fn optional_settings_take_their_defaults() {
    let config = parse(MINIMAL).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.sip.user_agent,
        format!("sihai/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        config.sip.timers,
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    );
    assert_eq!(
        config.sip.tcp,
        TcpSettings {
            idle_timeout: Duration::from_secs(300),
            max_connections: 10_000,
            max_message_bytes: 65_536,
        }
    );
    assert_eq!(config.log.level, "info");
}

#[test]
fn explicit_settings_are_used() {
    let config = parse(&minimal_with(&[
        "[[sip.listen]]",
        "transport = \"tcp\"",
        "address = \"[::1]:5070\"",
        "[sip.timers]",
        "t1_ms = 200",
        "t2_ms = 200",
        "t4_ms = 3000",
        "[sip.tcp]",
        "idle_timeout_s = 60",
        "max_connections = 5",
        "max_message_bytes = 1024",
        "[log]",
        "level = \"warn,sihai_sip=trace\"",
    ]))
    .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.sip.listen[1],
        Listen {
            transport: Transport::Tcp,
            address: address("[::1]:5070"),
            untrusted: Untrusted::Reject,
        }
    );
    assert_eq!(config.sip.timers.t1, Duration::from_millis(200));
    assert_eq!(config.sip.timers.t2, Duration::from_millis(200));
    assert_eq!(config.sip.timers.t4, Duration::from_secs(3));
    assert_eq!(config.sip.tcp.idle_timeout, Duration::from_secs(60));
    assert_eq!(config.sip.tcp.max_connections, 5);
    assert_eq!(config.sip.tcp.max_message_bytes, 1024);
    assert_eq!(config.log.level, "warn,sihai_sip=trace");
}

#[test]
fn log_format_is_text_unless_json_is_asked_for() {
    let defaults = parse(MINIMAL).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(defaults.log.format, LogFormat::Text);
    let json = parse(&minimal_with(&["[log]", "format = \"json\""]))
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(json.log.format, LogFormat::Json);
    assert_eq!(json.log.level, "info", "the level keeps its default");
}

#[test]
fn unknown_log_format_is_located_at_the_value_and_names_both_formats() {
    assert_one_error(
        &minimal_with(&["[log]", "format = \"xml\""]),
        6,
        10,
        "log.format",
        "unknown variant \"xml\", expected \"text\" or \"json\"",
    );
}

#[test]
fn untrusted_traffic_settings_are_used() {
    let config = parse(&[
        "[sip]",
        "max_requests_per_source = 300",
        "scanner_user_agents = [\"  MyScanner \", \"bad-bot\"]",
        "[[sip.listen]]",
        "transport = \"udp\"",
        "address = \"127.0.0.1:5060\"",
        "untrusted = \"drop\"",
        "[[sip.listen]]",
        "transport = \"tcp\"",
        "address = \"127.0.0.1:5060\"",
        "untrusted = \"reject\"",
    ])
    .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.sip.max_requests_per_source, 300);
    assert_eq!(config.sip.scanner_user_agents, ["myscanner", "bad-bot"]);
    assert_eq!(config.sip.listen[0].untrusted, Untrusted::Drop);
    assert_eq!(config.sip.listen[1].untrusted, Untrusted::Reject);

    let defaults = parse(MINIMAL).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(defaults.sip.max_requests_per_source, 5_000);
    assert!(defaults.sip.scanner_user_agents.is_empty());
    assert_eq!(defaults.sip.listen[0].untrusted, Untrusted::Reject);
}

#[test]
fn unknown_untrusted_mode_is_located_at_the_value() {
    assert_one_error(
        &minimal_with(&["untrusted = \"ignore\""]),
        5,
        13,
        "sip.listen[0].untrusted",
        "unknown variant \"ignore\", expected \"reject\" or \"drop\"",
    );
}

#[test]
fn request_limit_per_source_must_be_in_range() {
    for (value, column) in [("0", 27), ("10000001", 27)] {
        assert_one_error(
            &[
                "[sip]".to_string(),
                format!("max_requests_per_source = {value}"),
                "[[sip.listen]]".into(),
                "transport = \"udp\"".into(),
                "address = \"127.0.0.1:5060\"".into(),
            ],
            2,
            column,
            "sip.max_requests_per_source",
            "is out of range; must be between 1 and 10000000",
        );
    }
}

#[test]
fn drain_timeout_is_used_and_may_be_zero() {
    let with = |value: &str| {
        vec![
            "[sip]".to_string(),
            format!("drain_timeout_s = {value}"),
            "[[sip.listen]]".into(),
            "transport = \"udp\"".into(),
            "address = \"127.0.0.1:5060\"".into(),
        ]
    };
    let config = parse(&with("2")).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.sip.drain_timeout, Duration::from_secs(2));
    let config = parse(&with("0")).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        config.sip.drain_timeout,
        Duration::ZERO,
        "0: the calls are ended at the first signal"
    );
    let defaults = parse(MINIMAL).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(defaults.sip.drain_timeout, Duration::from_secs(30));
    assert_one_error(
        &with("86401"),
        2,
        19,
        "sip.drain_timeout_s",
        "86401 is out of range; must be between 0 and 86400",
    );
}

#[test]
fn empty_scanner_fragment_is_refused() {
    assert_one_error(
        &[
            "[sip]",
            "scanner_user_agents = [\"sipvicious\", \" \"]",
            "[[sip.listen]]",
            "transport = \"udp\"",
            "address = \"127.0.0.1:5060\"",
        ],
        2,
        38,
        "sip.scanner_user_agents[1]",
        "must not be empty",
    );
}

#[test]
fn message_size_bounds_are_inclusive() {
    for bytes in ["1024", "16777216"] {
        let size = format!("max_message_bytes = {bytes}");
        let lines = minimal_with(&["[sip.tcp]", &size]);
        assert!(parse(&lines).is_ok(), "{bytes}");
    }
}

// ---- structure: syntax, unknown fields, types, missing fields ------------------------

#[test]
fn syntax_error_is_located() {
    assert_one_error(
        &["[sip]", "user_agent = \"sihai", "[log]"],
        2,
        20,
        "sip.user_agent",
        "invalid basic string",
    );
}

#[test]
fn every_syntax_error_is_reported() {
    let errors = errors(&["[sip]", "a = 1", "a = 2", "[log]", "level = info"]);
    let positions: Vec<_> = errors
        .iter()
        .map(|error| (error.line, error.column))
        .collect();
    assert_eq!(positions, [(3, 1), (5, 9)], "{errors:#?}");
    assert!(errors[0].message.contains("duplicate key"));
    // The second `a` is not in the recovered tree, so no field can be named for it.
    assert_eq!(errors[0].field, "");
    assert_eq!(errors[1].field, "log.level");
}

#[test]
fn unknown_field_in_section_is_named() {
    assert_one_error(
        &minimal_with(&["[sip.timers]", "t3_ms = 100"]),
        6,
        1,
        "sip.timers.t3_ms",
        "unknown field \"t3_ms\", expected one of \"t1_ms\", \"t2_ms\", \"t4_ms\"",
    );
}

#[test]
fn unknown_field_in_listen_entry_is_indexed() {
    assert_one_error(
        &minimal_with(&[
            "[[sip.listen]]",
            "transport = \"tcp\"",
            "address = \"127.0.0.1:5060\"",
            "protocol = \"tcp\"",
        ]),
        8,
        1,
        "sip.listen[1].protocol",
        "unknown field \"protocol\"",
    );
}

#[test]
fn unknown_section_is_named() {
    assert_one_error(
        &minimal_with(&["[trunks]", "name = \"a\""]),
        5,
        2,
        "trunks",
        "unknown field \"trunks\", expected one of \"sip\", \"log\", \"store\", \"alerts\", \"api\", \"media\", \"trunk\", \"enterprise\", \"number\", \"plan\", \"group\", \"schedule\", \"prompt\", \"menu\", \"extension\"",
    );
}

#[test]
fn unknown_transport_matches_the_documented_message() {
    let errors = errors(&minimal_with(&[
        "[[sip.listen]]",
        "transport = \"sctp\"",
        "address = \"127.0.0.1:5060\"",
    ]));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].to_string(),
        "test.toml:6:13: sip.listen[1].transport: unknown variant \"sctp\", expected \"udp\" or \"tcp\""
    );
}

#[test]
fn wrong_type_is_located_at_the_value() {
    assert_one_error(
        &minimal_with(&["[sip.timers]", "t1_ms = \"500\""]),
        6,
        9,
        "sip.timers.t1_ms",
        "invalid type: string \"500\", expected u64",
    );
}

#[test]
fn negative_number_is_a_wrong_type() {
    assert_one_error(
        &minimal_with(&["[sip.tcp]", "max_connections = -1"]),
        6,
        19,
        "sip.tcp.max_connections",
        "invalid value: integer `-1`, expected u64",
    );
}

#[test]
fn table_of_the_wrong_type_is_named() {
    assert_one_error(&["sip = 5"], 1, 7, "sip", "expected a [sip] table");
}

#[test]
fn missing_required_field_points_at_its_entry() {
    assert_one_error(
        &minimal_with(&["[[sip.listen]]", "address = \"127.0.0.1:5061\""]),
        5,
        1,
        "sip.listen[1].transport",
        "missing field \"transport\"",
    );
    assert_one_error(
        &["[sip]", "[[sip.listen]]", "transport = \"udp\""],
        2,
        1,
        "sip.listen[0].address",
        "missing field \"address\"",
    );
}

#[test]
fn structural_errors_in_different_sections_are_all_reported() {
    let errors = errors(&[
        "[sip]",              // 1
        "user_agnet = \"x\"", // 2
        "[log]",              // 3
        "levle = \"debug\"",  // 4
        "[trunk]",            // 5
    ]);
    let found: Vec<_> = errors
        .iter()
        .map(|error| (error.line, error.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [(2, "sip.user_agnet"), (4, "log.levle"), (5, "trunk")],
        "{errors:#?}"
    );
}

// ---- meaning: the validation pass ---------------------------------------------------

#[test]
fn missing_listen_points_at_the_sip_table() {
    assert_one_error(
        &["# comment", "[sip]", "user_agent = \"x\""],
        2,
        1,
        "sip.listen",
        "at least one [[sip.listen]] entry is required",
    );
}

#[test]
fn empty_listen_array_is_rejected() {
    assert_one_error(
        &["[sip]", "listen = []"],
        2,
        10,
        "sip.listen",
        "at least one [[sip.listen]] entry is required",
    );
}

#[test]
fn missing_sip_section_reports_at_the_start_of_the_file() {
    assert_one_error(
        &["[log]", "level = \"info\""],
        1,
        1,
        "sip.listen",
        "at least one [[sip.listen]] entry is required",
    );
    assert_one_error(&[""; 0], 1, 1, "sip.listen", "at least one");
}

#[test]
fn duplicate_listen_entry_names_the_first() {
    assert_one_error(
        &minimal_with(&[
            "[[sip.listen]]",               // 5
            "transport = \"tcp\"",          // 6
            "address = \"127.0.0.1:5060\"", // 7
            "[[sip.listen]]",               // 8
            "transport = \"udp\"",          // 9
            "address = \"127.0.0.1:5060\"", // 10
        ]),
        8,
        1,
        "sip.listen[2]",
        "duplicate listen entry: udp 127.0.0.1:5060 is already declared by sip.listen[0] at line 2",
    );
}

#[test]
fn port_zero_is_rejected() {
    assert_one_error(
        &[
            "[sip]",
            "[[sip.listen]]",
            "transport = \"udp\"",
            "address = \"0.0.0.0:0\"",
        ],
        4,
        11,
        "sip.listen[0].address",
        "port 0 is not allowed",
    );
}

#[test]
fn unparsable_address_is_rejected() {
    for bad in ["localhost:5060", "127.0.0.1", "::1:5060", "127.0.0.1:70000"] {
        let line = format!("address = \"{bad}\"");
        let lines = ["[sip]", "[[sip.listen]]", "transport = \"udp\"", &line];
        assert_one_error(
            &lines,
            4,
            11,
            "sip.listen[0].address",
            &format!("invalid socket address {bad:?}"),
        );
    }
}

#[test]
fn zero_timers_are_rejected() {
    assert_one_error(
        &minimal_with(&["[sip.timers]", "t1_ms = 0"]),
        6,
        9,
        "sip.timers.t1_ms",
        "must be greater than 0",
    );
    assert_one_error(
        &minimal_with(&["[sip.timers]", "t4_ms = 0"]),
        6,
        9,
        "sip.timers.t4_ms",
        "must be greater than 0",
    );
}

#[test]
fn t2_below_t1_is_rejected() {
    assert_one_error(
        &minimal_with(&["[sip.timers]", "t1_ms = 1000", "t2_ms = 999"]),
        7,
        9,
        "sip.timers.t2_ms",
        "t2_ms (999) must not be less than t1_ms (1000)",
    );
    // Only t1 written: the default t2 is too small, so t1 is the setting to blame.
    assert_one_error(
        &minimal_with(&["[sip.timers]", "t1_ms = 5000"]),
        6,
        9,
        "sip.timers.t1_ms",
        "t2_ms (4000, the default) must not be less than t1_ms (5000)",
    );
}

#[test]
fn huge_timer_is_rejected() {
    assert_one_error(
        &minimal_with(&["[sip.timers]", "t4_ms = 3600001"]),
        6,
        9,
        "sip.timers.t4_ms",
        "too large",
    );
}

#[test]
fn zero_idle_timeout_is_rejected() {
    assert_one_error(
        &minimal_with(&["[sip.tcp]", "idle_timeout_s = 0"]),
        6,
        18,
        "sip.tcp.idle_timeout_s",
        "must be greater than 0",
    );
}

#[test]
fn huge_idle_timeout_is_rejected() {
    assert_one_error(
        &minimal_with(&["[sip.tcp]", "idle_timeout_s = 86401"]),
        6,
        18,
        "sip.tcp.idle_timeout_s",
        "too large",
    );
}

#[test]
fn zero_max_connections_is_rejected() {
    assert_one_error(
        &minimal_with(&["[sip.tcp]", "max_connections = 0"]),
        6,
        19,
        "sip.tcp.max_connections",
        "must be greater than 0",
    );
}

#[test]
fn message_size_out_of_range_is_rejected() {
    for (bytes, column) in [("1023", 21), ("16777217", 21), ("0", 21)] {
        let size = format!("max_message_bytes = {bytes}");
        assert_one_error(
            &minimal_with(&["[sip.tcp]", &size]),
            6,
            column,
            "sip.tcp.max_message_bytes",
            &format!("{bytes} is out of range; must be between 1024 and 16777216"),
        );
    }
}

#[test]
fn invalid_log_level_is_rejected() {
    assert_one_error(
        &minimal_with(&["[log]", "level = \"verbose\""]),
        6,
        9,
        "log.level",
        "invalid log level \"verbose\": unknown level \"verbose\"",
    );
    assert_one_error(
        &minimal_with(&["[log]", "level = \"info,sihai sip=debug\""]),
        6,
        9,
        "log.level",
        "target \"sihai sip\" is not a module path",
    );
}

#[test]
fn unusable_user_agent_is_rejected() {
    assert_one_error(
        &[
            "[sip]",
            "user_agent = \"\"",
            "[[sip.listen]]",
            "transport = \"udp\"",
            "address = \"127.0.0.1:5060\"",
        ],
        2,
        14,
        "sip.user_agent",
        "must not be empty",
    );
    assert_one_error(
        &[
            "[sip]",
            "user_agent = \"a\\r\\nVia: x\"",
            "[[sip.listen]]",
            "transport = \"udp\"",
            "address = \"127.0.0.1:5060\"",
        ],
        2,
        14,
        "sip.user_agent",
        "control characters",
    );
}

#[test]
fn all_semantic_errors_are_collected_in_file_order() {
    let errors = errors(&[
        "[log]",                    // 1
        "level = \"loud\"",         // 2
        "[sip]",                    // 3
        "[[sip.listen]]",           // 4
        "transport = \"udp\"",      // 5
        "address = \"10.0.0.1:0\"", // 6
        "[[sip.listen]]",           // 7
        "transport = \"tcp\"",      // 8
        "address = \"nowhere\"",    // 9
        "[sip.timers]",             // 10
        "t1_ms = 0",                // 11
        "t4_ms = 0",                // 12
        "[sip.tcp]",                // 13
        "max_connections = 0",      // 14
        "max_message_bytes = 100",  // 15
    ]);
    let found: Vec<_> = errors
        .iter()
        .map(|error| (error.line, error.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "log.level"),
            (6, "sip.listen[0].address"),
            (9, "sip.listen[1].address"),
            (11, "sip.timers.t1_ms"),
            (12, "sip.timers.t4_ms"),
            (14, "sip.tcp.max_connections"),
            (15, "sip.tcp.max_message_bytes"),
        ],
        "{errors:#?}"
    );
}

#[test]
fn structural_and_semantic_errors_in_different_sections_are_both_reported() {
    let errors = errors(&minimal_with(&[
        "[sip.timers]",
        "t1_ms = 0",
        "[log]",
        "colour = true",
    ]));
    let found: Vec<_> = errors
        .iter()
        .map(|error| (error.line, error.field.as_str()))
        .collect();
    assert_eq!(
        found,
        [(6, "sip.timers.t1_ms"), (8, "log.colour")],
        "{errors:#?}"
    );
}

#[test]
fn quoted_keys_are_quoted_in_field_paths() {
    assert_one_error(
        &minimal_with(&["[sip.tcp]", "\"max connections\" = 1"]),
        6,
        1,
        "sip.tcp.\"max connections\"",
        "unknown field",
    );
}

#[test]
fn columns_count_characters_after_multibyte_text() {
    assert_one_error(
        &minimal_with(&["[sip.timers]", "t1_ms = 0 # 四海"]),
        6,
        9,
        "sip.timers.t1_ms",
        "must be greater than 0",
    );
    assert_one_error(&["[sip]", "user_agent = \"四海\" x"], 2, 19, "", "");
}

// ---- load ----------------------------------------------------------------------------

/// A file in the system temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("sihai-config-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn load_reports_errors_under_the_path() {
    let file = TempFile::new(
        "bad.toml",
        b"[sip]\n[[sip.listen]]\ntransport = \"udp\"\naddress = \"1.2.3.4:0\"\n",
    );
    let errors = Config::load(&file.0).expect_err("port 0");
    assert_eq!(
        errors.to_string(),
        format!(
            "{}:4:11: sip.listen[0].address: port 0 is not allowed; give the port to listen on (5060 is the SIP default)",
            file.0.display()
        )
    );
}

#[test]
fn unreadable_file_is_reported_without_position() {
    let path = std::env::temp_dir().join("sihai-config-no-such-file.toml");
    let errors = Config::load(&path).expect_err("missing file");
    assert_eq!(errors.errors.len(), 1);
    let error = &errors.errors[0];
    assert_eq!((error.line, error.column, error.field.as_str()), (0, 0, ""));
    assert!(
        errors
            .to_string()
            .starts_with(&format!("{}: cannot read the file: ", path.display())),
        "{errors}"
    );
}

#[test]
fn invalid_utf8_is_located() {
    let file = TempFile::new("latin1.toml", b"[sip]\n# caf\xe9\n");
    let errors = Config::load(&file.0).expect_err("not UTF-8");
    let error = &errors.errors[0];
    assert_eq!((error.line, error.column), (2, 6), "{errors}");
    assert!(error.message.contains("not valid UTF-8"));
}

#[test]
fn byte_order_mark_is_accepted() {
    let text = format!("\u{feff}{}", file(MINIMAL));
    assert!(Config::from_str(&text, ORIGIN).is_ok());
}

#[test]
fn errors_display_one_per_line() {
    let errors =
        parse(&minimal_with(&["[sip.timers]", "t1_ms = 0", "t4_ms = 0"])).expect_err("two errors");
    assert_eq!(
        errors.to_string(),
        "test.toml:6:9: sip.timers.t1_ms: must be greater than 0\n\
         test.toml:7:9: sip.timers.t4_ms: must be greater than 0"
    );
}

#[test]
fn single_bracket_listen_table_is_a_type_error() {
    assert_one_error(
        &[
            "[sip.listen]",
            "transport = \"udp\"",
            "address = \"127.0.0.1:5060\"",
        ],
        1,
        1,
        "sip.listen",
        "invalid type: table, expected an array",
    );
}

proptest::proptest! {
    /// Whatever the edit to a valid file, the answer is a config or errors, never a panic,
    /// and every error has a position inside the file.
    #[test]
    fn arbitrary_edits_never_panic(
        at in 0usize..40_000,
        cut in 0usize..40,
        insert in "[\\PC\n\\[\\]\"'=.,#{}]{0,12}",
    ) {
        let sample = include_str!("../../../config/sihai.toml");
        let mut at = at.min(sample.len());
        while !sample.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + cut).min(sample.len());
        while !sample.is_char_boundary(end) {
            end -= 1;
        }
        let text = format!("{}{}{}", &sample[..at], insert, &sample[end..]);
        if let Err(errors) = Config::from_str(&text, ORIGIN) {
            proptest::prop_assert!(!errors.errors.is_empty());
            let lines = text.split('\n').count();
            for error in &errors.errors {
                proptest::prop_assert!(error.line >= 1 && error.line <= lines, "{}", error);
                proptest::prop_assert!(error.column >= 1, "{}", error);
            }
        }
    }
}

/// The routing sections: trunks, enterprises, numbers, plans, groups, schedules.
mod routing;

/// The media sections: media, prompts, menus, extensions.
mod media;

/// Billing: tariffs, `[billing]`, enterprises' tariffs and overrides, numbers' tariffs.
mod billing;
