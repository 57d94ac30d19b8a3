//! End-to-end checks of the media sections (`[media]`, `[[prompt]]`, `[[menu]]`,
//! `[[extension]]`) and the media settings of `[[enterprise]]`, `[[number]]` and
//! `[[plan]]`: each kind of error exactly as an operator sees it,
//! `FILE:LINE:COL: FIELD: message`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{MINIMAL, errors, file, parse};
use crate::*;

/// A valid file with every media section; tests append to it, replace or insert lines.
/// Line numbers are in the comments.
const BASE: &[&str] = &[
    "[sip]",                                                         // 1
    "[[sip.listen]]",                                                // 2
    "transport = \"udp\"",                                           // 3
    "address = \"127.0.0.1:5060\"",                                  // 4
    "[[enterprise]]",                                                // 5
    "id = \"acme\"",                                                 // 6
    "name = \"Acme\"",                                               // 7
    "[[enterprise]]",                                                // 8
    "id = \"beta\"",                                                 // 9
    "name = \"Beta\"",                                               // 10
    "[[prompt]]",                                                    // 11
    "name = \"welcome\"",                                            // 12
    "file = \"welcome.wav\"",                                        // 13
    "[[prompt]]",                                                    // 14
    "name = \"main-menu\"",                                          // 15
    "file = \"acme/main-menu.wav\"",                                 // 16
    "[[prompt]]",                                                    // 17
    "name = \"dial\"",                                               // 18
    "file = \"/srv/prompts/dial.WAV\"",                              // 19
    "[[group]]",                                                     // 20
    "name = \"sales\"",                                              // 21
    "enterprise = \"acme\"",                                         // 22
    "strategy = \"sequential\"",                                     // 23
    "phones = [{ number = \"13900000001\" }]",                       // 24
    "[[group]]",                                                     // 25
    "name = \"desk\"",                                               // 26
    "enterprise = \"acme\"",                                         // 27
    "strategy = \"simultaneous\"",                                   // 28
    "phones = [{ number = \"13900000002\" }]",                       // 29
    "[[group]]",                                                     // 30
    "name = \"beta-desk\"",                                          // 31
    "enterprise = \"beta\"",                                         // 32
    "strategy = \"sequential\"",                                     // 33
    "phones = [{ number = \"13900000003\" }]",                       // 34
    "[[extension]]",                                                 // 35
    "enterprise = \"acme\"",                                         // 36
    "number = \"8001\"",                                             // 37
    "group = \"desk\"",                                              // 38
    "[[menu]]",                                                      // 39
    "name = \"acme-menu\"",                                          // 40
    "enterprise = \"acme\"",                                         // 41
    "welcome = \"welcome\"",                                         // 42
    "root = \"main\"",                                               // 43
    "[[menu.node]]",                                                 // 44
    "name = \"main\"",                                               // 45
    "prompt = \"main-menu\"",                                        // 46
    "default = { group = \"sales\" }",                               // 47
    "[menu.node.options]",                                           // 48
    "\"1\" = { group = \"sales\" }",                                 // 49
    "\"2\" = { menu = \"service\" }",                                // 50
    "\"0\" = { extension = { prompt = \"dial\", max_digits = 4 } }", // 51
    "[[menu.node]]",                                                 // 52
    "name = \"service\"",                                            // 53
    "prompt = \"main-menu\"",                                        // 54
    "default = \"previous\"",                                        // 55
    "[[plan]]",                                                      // 56
    "name = \"acme-main\"",                                          // 57
    "enterprise = \"acme\"",                                         // 58
    "group = \"sales\"",                                             // 59
    "menu = \"acme-menu\"",                                          // 60
    "[[number]]",                                                    // 61
    "number = \"4001234567\"",                                       // 62
    "enterprise = \"acme\"",                                         // 63
    "status = \"active\"",                                           // 64
    "plan = \"acme-main\"",                                          // 65
];

/// `BASE` followed by `extra`, which starts at line 66 (inside the `[[number]]`).
fn with(extra: &[&str]) -> Vec<String> {
    BASE.iter()
        .chain(extra)
        .map(|line| line.to_string())
        .collect()
}

/// `BASE` with line `line` (1-based) replaced by `text`.
fn replacing(line: usize, text: &str) -> Vec<String> {
    let mut lines = with(&[]);
    lines[line - 1] = text.to_owned();
    lines
}

/// `BASE` with `extra` inserted after line `after`, so that it starts at `after + 1`.
fn inserting(after: usize, extra: &[&str]) -> Vec<String> {
    let mut lines = with(&[]);
    lines.splice(after..after, extra.iter().map(|line| line.to_string()));
    lines
}

/// Extra settings for the main node (it ends at line 47): they start at line 48.
fn main_node_with(extra: &[&str]) -> Vec<String> {
    inserting(47, extra)
}

/// Extra settings for the service node (it ends at line 55): they start at line 56.
fn service_node_with(extra: &[&str]) -> Vec<String> {
    inserting(55, extra)
}

fn ok(lines: &[impl AsRef<str>]) -> Config {
    parse(lines).unwrap_or_else(|errors| panic!("{errors}"))
}

/// Asserts that the file has exactly one error, displayed exactly as `expected`.
#[track_caller]
fn assert_error(lines: &[impl AsRef<str>], expected: &str) {
    let shown: Vec<String> = errors(lines).iter().map(ToString::to_string).collect();
    assert_eq!(shown, [expected]);
}

/// Asserts that the file has exactly these errors, in this order, displayed exactly.
#[track_caller]
fn assert_errors(lines: &[impl AsRef<str>], expected: &[&str]) {
    let shown: Vec<String> = errors(lines).iter().map(ToString::to_string).collect();
    assert_eq!(shown, expected);
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

// ---- valid files ------------------------------------------------------------------

#[test]
fn media_sections_are_optional() {
    let config = ok(MINIMAL);
    assert_eq!(
        config.media,
        MediaConfig {
            relay: false,
            address: ip("127.0.0.1"),
            rtp_ports: 20_000..=29_999,
            media_timeout: Duration::from_secs(30),
            recordings: PathBuf::from("recordings"),
            prompts_dir: PathBuf::from("prompts"),
        }
    );
    assert_eq!(config.media.port_pairs(), 5_000);
    assert!(config.prompts.is_empty());
    assert!(config.menus.is_empty());
    assert!(config.extensions.is_empty());
}

#[test]
fn directories_are_relative_to_the_configuration_file() {
    let text = file(MINIMAL);
    let config = Config::from_str(&text, "/etc/sihai/sihai.toml").expect("valid");
    assert_eq!(
        config.media.recordings,
        PathBuf::from("/etc/sihai/recordings")
    );
    assert_eq!(
        config.media.prompts_dir,
        PathBuf::from("/etc/sihai/prompts")
    );
    let config = Config::from_str(&text, "config/sihai.toml").expect("valid");
    assert_eq!(config.media.recordings, PathBuf::from("config/recordings"));

    let mut lines = super::minimal_with(&[
        "[media]",
        "recordings = \"/var/spool/sihai\"",
        "prompts = \"../common/prompts\"",
        "[[prompt]]",
        "name = \"welcome\"",
        "file = \"zh/welcome.wav\"",
    ]);
    lines.push("[[prompt]]".into());
    lines.push("name = \"busy\"".into());
    lines.push("file = \"/opt/busy.wav\"".into());
    let config = Config::from_str(&file(&lines), "/etc/sihai/sihai.toml").expect("valid");
    assert_eq!(config.media.recordings, PathBuf::from("/var/spool/sihai"));
    assert_eq!(
        config.media.prompts_dir,
        PathBuf::from("/etc/sihai/../common/prompts")
    );
    assert_eq!(
        config.prompts,
        vec![
            PromptConfig {
                name: "welcome".into(),
                enterprise: None,
                source: PromptSource::File(PathBuf::from(
                    "/etc/sihai/../common/prompts/zh/welcome.wav"
                )),
            },
            PromptConfig {
                name: "busy".into(),
                enterprise: None,
                source: PromptSource::File(PathBuf::from("/opt/busy.wav")),
            },
        ]
    );
}

#[test]
fn media_address_defaults_to_the_first_listen_address() {
    let config = ok(&[
        "[sip]",
        "[[sip.listen]]",
        "transport = \"tcp\"",
        "address = \"[2001:db8::7]:5060\"",
        "[[sip.listen]]",
        "transport = \"udp\"",
        "address = \"192.0.2.1:5060\"",
    ]);
    assert_eq!(config.media.address, ip("2001:db8::7"));
    // An explicit address wins, even when the listener is on every interface.
    let config = ok(&[
        "[sip]",
        "[[sip.listen]]",
        "transport = \"udp\"",
        "address = \"0.0.0.0:5060\"",
        "[media]",
        "address = \"192.0.2.10\"",
    ]);
    assert_eq!(config.media.address, ip("192.0.2.10"));
}

#[test]
fn base_file_takes_the_defaults() {
    let config = ok(BASE);
    assert_eq!(
        config.prompts,
        vec![
            PromptConfig {
                name: "welcome".into(),
                enterprise: None,
                source: PromptSource::File(PathBuf::from("prompts/welcome.wav")),
            },
            PromptConfig {
                name: "main-menu".into(),
                enterprise: None,
                source: PromptSource::File(PathBuf::from("prompts/acme/main-menu.wav")),
            },
            PromptConfig {
                name: "dial".into(),
                enterprise: None,
                source: PromptSource::File(PathBuf::from("/srv/prompts/dial.WAV")),
            },
        ]
    );
    assert_eq!(
        config.extensions,
        vec![ExtensionConfig {
            enterprise: "acme".into(),
            number: "8001".into(),
            group: "desk".into(),
            ringback: None,
        }]
    );
    assert_eq!(
        config.menus,
        vec![MenuConfig {
            name: "acme-menu".into(),
            enterprise: "acme".into(),
            welcome: Some("welcome".into()),
            root: "main".into(),
            nodes: vec![
                MenuNodeConfig {
                    name: "main".into(),
                    prompt: "main-menu".into(),
                    timeout: Duration::from_secs(5),
                    retries: 3,
                    invalid: None,
                    ringback: None,
                    default: MenuActionConfig::Group("sales".into()),
                    // File order, not sorted by key.
                    options: vec![
                        ('1', MenuActionConfig::Group("sales".into())),
                        ('2', MenuActionConfig::Menu("service".into())),
                        (
                            '0',
                            MenuActionConfig::Extension {
                                prompt: "dial".into(),
                                max_digits: 4,
                                inter_digit_timeout: Duration::from_secs(3),
                                terminator: '#',
                            }
                        ),
                    ],
                },
                MenuNodeConfig {
                    name: "service".into(),
                    prompt: "main-menu".into(),
                    timeout: Duration::from_secs(5),
                    retries: 3,
                    invalid: None,
                    ringback: None,
                    default: MenuActionConfig::Previous,
                    options: vec![],
                },
            ],
        }]
    );
    assert_eq!(
        config.menus[0].node("service").map(|node| &node.default),
        Some(&MenuActionConfig::Previous)
    );
    assert_eq!(config.menus[0].node("sales"), None);
    let plan = &config.plans[0];
    assert_eq!(plan.menu.as_deref(), Some("acme-menu"));
    assert_eq!(plan.early_media, EarlyMedia::Ringback);
    let number = &config.numbers[0];
    assert_eq!((number.ringback.as_deref(), number.record), (None, false));
    assert_eq!(
        config.enterprises[0].recording_retention_days,
        DEFAULT_RECORDING_RETENTION_DAYS
    );
    assert_eq!(DEFAULT_RECORDING_RETENTION_DAYS, 180);
}

#[test]
fn every_media_setting_is_read() {
    let mut lines = with(&[
        "ringback = \"welcome\"", // 66
        "record = true",          // 67
        "[media]",
        "address = \"::1\"",
        "rtp_ports = \"1024-1025\"",
        "media_timeout = \"1h\"",
        "recordings = \"rec\"",
        "prompts = \"/usr/share/sihai\"",
        "[[extension]]",
        "enterprise = \"beta\"",
        "number = \"8001\"", // the same number as acme's: extensions are per enterprise
        "group = \"beta-desk\"",
        "ringback = \"dial\"",
        "[[extension]]",
        "enterprise = \"acme\"",
        "number = \"01234567890123456789012345678901\"",
        "group = \"sales\"",
    ]);
    lines[6] = "name = \"Acme\"\nrecording_retention_days = 3650".into();
    lines[9] = "name = \"Beta\"\nrecording_retention_days = 1".into();
    lines[54] = [
        "timeout = \"300s\"",
        "retries = 10",
        "invalid = \"welcome\"",
        "ringback = \"dial\"",
        "default = \"hangup\"",
        "[menu.node.options]",
        "\"#\" = \"hangup\"",
        "\"*\" = \"previous\"",
        "9 = \"repeat\"",
        "\"5\" = { menu = \"main\" }",
        "\"8\" = { extension = { prompt = \"dial\", max_digits = 32, inter_digit_timeout = \"1500ms\", terminator = \"*\" } }",
    ]
    .join("\n");
    lines[59] = "menu = \"acme-menu\"\nearly_media = \"phone\"".into();
    let config = ok(&lines);
    assert_eq!(
        config.media,
        MediaConfig {
            relay: false,
            address: ip("::1"),
            rtp_ports: 1_024..=1_025,
            media_timeout: Duration::from_secs(3_600),
            recordings: PathBuf::from("rec"),
            prompts_dir: PathBuf::from("/usr/share/sihai"),
        }
    );
    assert_eq!(config.media.port_pairs(), 1);
    assert_eq!(
        config.prompts[0].source,
        PromptSource::File(PathBuf::from("/usr/share/sihai/welcome.wav"))
    );
    assert_eq!(config.enterprises[0].recording_retention_days, 3_650);
    assert_eq!(config.enterprises[1].recording_retention_days, 1);
    assert_eq!(config.extensions[1].enterprise, "beta");
    assert_eq!(config.extensions[1].ringback.as_deref(), Some("dial"));
    assert_eq!(config.extensions[2].number.len(), 32);
    assert_eq!(
        config.menus[0].nodes[1],
        MenuNodeConfig {
            name: "service".into(),
            prompt: "main-menu".into(),
            timeout: Duration::from_secs(300),
            retries: 10,
            invalid: Some("welcome".into()),
            ringback: Some("dial".into()),
            default: MenuActionConfig::Hangup,
            options: vec![
                ('#', MenuActionConfig::Hangup),
                ('*', MenuActionConfig::Previous),
                ('9', MenuActionConfig::Repeat),
                ('5', MenuActionConfig::Menu("main".into())),
                (
                    '8',
                    MenuActionConfig::Extension {
                        prompt: "dial".into(),
                        max_digits: 32,
                        inter_digit_timeout: Duration::from_millis(1_500),
                        terminator: '*',
                    }
                ),
            ],
        }
    );
    assert_eq!(config.plans[0].early_media, EarlyMedia::Phone);
    assert_eq!(config.numbers[0].ringback.as_deref(), Some("welcome"));
    assert!(config.numbers[0].record);
}

#[test]
fn durations_take_every_unit() {
    for (written, expected) in [
        ("\"1s\"", Duration::from_secs(1)),
        ("\"1000ms\"", Duration::from_secs(1)),
        ("\"2m\"", Duration::from_secs(120)),
        ("\"2min\"", Duration::from_secs(120)),
        ("\"1h\"", Duration::from_secs(3_600)),
    ] {
        let setting = format!("media_timeout = {written}");
        let config = ok(&with(&["[media]", &setting]));
        assert_eq!(config.media.media_timeout, expected, "{written}");
    }
}

// ---- [media] --------------------------------------------------------------------------

#[test]
fn media_address_must_be_a_usable_ip() {
    assert_error(
        &with(&["[media]", "address = \"0.0.0.0\""]),
        "test.toml:67:11: media.address: 0.0.0.0 means \"every interface\" and cannot be \
         advertised in SDP: phones and carriers need the one address to send audio to",
    );
    assert_error(
        &with(&["[media]", "address = \"::\""]),
        "test.toml:67:11: media.address: :: means \"every interface\" and cannot be \
         advertised in SDP: phones and carriers need the one address to send audio to",
    );
    assert_error(
        &with(&["[media]", "address = \"239.1.1.1\""]),
        "test.toml:67:11: media.address: 239.1.1.1 is a multicast address; the relay needs \
         this machine's unicast address",
    );
    assert_error(
        &with(&["[media]", "address = \"127.0.0.1:5060\""]),
        "test.toml:67:11: media.address: invalid IP address \"127.0.0.1:5060\": expected a \
         literal IPv4 or IPv6 address without a port, e.g. \"192.0.2.10\" or \"2001:db8::10\" \
         (host names are not resolved)",
    );
}

#[test]
fn listening_on_every_interface_needs_a_media_address_once_the_relay_runs() {
    let expected = |line_column: &str| {
        format!(
            "test.toml:{line_column}: media.address: the relay's address defaults to the \
             first [[sip.listen]] address's IP, but 0.0.0.0 means \"every interface\" and \
             cannot be advertised in SDP: phones and carriers need the one address to send \
             audio to; add [media] with address = this machine's IP, e.g. address = \
             \"192.0.2.10\""
        )
    };
    // Without the relay the address is not used: no error.
    ok(&replacing(4, "address = \"0.0.0.0:5060\""));
    // With the relay on and no address: reported at [media].
    let mut lines = replacing(4, "address = \"0.0.0.0:5060\"");
    lines.extend([
        "[media]".to_owned(),
        "relay = true".to_owned(),
        "rtp_ports = \"20000-20099\"".to_owned(),
    ]);
    assert_error(&lines, &expected("66:1"));
}

#[test]
fn rtp_port_ranges_are_checked() {
    for (range, message) in [
        (
            "20001-29999",
            "port range \"20001-29999\" starts at an odd port; RTP uses even ports (each with \
             the odd RTCP port above it), so start at 20000",
        ),
        (
            "29999-20000",
            "port range \"29999-20000\" is reversed; write the lower port first, e.g. \
             \"20000-29999\"",
        ),
        (
            "1000-2000",
            "port range \"1000-2000\" starts below 1024; use unprivileged ports, e.g. \
             \"20000-29999\"",
        ),
        (
            "20000-20000",
            "port range \"20000-20000\" holds one port; a call leg needs a pair (an even RTP \
             port and the odd RTCP port above it), e.g. \"20000-20001\"",
        ),
        (
            "20000-65536",
            "port 65536 in \"20000-65536\" is out of range; ports go up to 65535",
        ),
        (
            "20000",
            "invalid port range \"20000\": expected \"FIRST-LAST\", two port numbers with both \
             ends included, e.g. \"20000-29999\"",
        ),
    ] {
        let setting = format!("rtp_ports = \"{range}\"");
        assert_error(
            &with(&["[media]", &setting]),
            &format!("test.toml:67:13: media.rtp_ports: {message}"),
        );
    }
}

#[test]
fn media_timeout_is_checked() {
    for (written, message) in [
        (
            "\"0s\"",
            "\"0s\" is out of range; must be between 1s and 1h",
        ),
        (
            "\"61m\"",
            "\"61m\" is out of range; must be between 1s and 1h",
        ),
        (
            "\"999ms\"",
            "\"999ms\" is out of range; must be between 1s and 1h",
        ),
        (
            "\"30\"",
            "invalid duration \"30\": write a whole number and a unit (ms, s, m or h), e.g. \
             \"5s\", \"500ms\", \"2m\" or \"1h\"; must be between 1s and 1h",
        ),
        (
            "\"1.5s\"",
            "invalid duration \"1.5s\": write a whole number and a unit (ms, s, m or h), e.g. \
             \"5s\", \"500ms\", \"2m\" or \"1h\"; must be between 1s and 1h",
        ),
        (
            "30",
            "invalid type: integer `30`, expected a duration with its unit in a string, e.g. \
             \"5s\", \"500ms\", \"2m\" or \"1h\"",
        ),
    ] {
        let setting = format!("media_timeout = {written}");
        assert_error(
            &with(&["[media]", &setting]),
            &format!("test.toml:67:17: media.media_timeout: {message}"),
        );
    }
}

#[test]
fn media_directories_and_fields_are_checked() {
    assert_error(
        &with(&["[media]", "recordings = \"\""]),
        "test.toml:67:14: media.recordings: must not be empty; remove the setting to use the \
         default \"recordings\"",
    );
    assert_error(
        &with(&["[media]", "prompts = \"a\\tb\""]),
        "test.toml:67:11: media.prompts: must not contain control characters",
    );
    assert_error(
        &with(&["[media]", "rtp_port = \"20000-29999\""]),
        "test.toml:67:1: media.rtp_port: unknown field \"rtp_port\", expected one of \
         \"relay\", \"address\", \"rtp_ports\", \"media_timeout\", \"recordings\", \"prompts\"",
    );
}

// ---- [[prompt]] -----------------------------------------------------------------------

#[test]
fn duplicate_prompt_names_are_rejected() {
    assert_error(
        &inserting(
            19,
            &[
                "[[prompt]]",
                "name = \"welcome\"",
                "file = \"welcome-2.wav\"",
            ],
        ),
        "test.toml:21:8: prompt[3].name: duplicate prompt name \"welcome\": already declared \
         by prompt[0] at line 12",
    );
}

#[test]
fn prompt_files_must_be_wav() {
    assert_error(
        &replacing(13, "file = \"welcome.mp3\""),
        "test.toml:13:8: prompt[0].file: \"welcome.mp3\" is not a .wav file; prompts are WAV \
         recordings, e.g. \"welcome.wav\"",
    );
    assert_error(
        &replacing(13, "file = \"\""),
        "test.toml:13:8: prompt[0].file: must not be empty; give the WAV file, relative to \
         [media] prompts or absolute, e.g. \"welcome.wav\"",
    );
    assert_error(
        &inserting(
            19,
            &["[[prompt]]", "name = \"hold \"", "file = \"hold.wav\""],
        ),
        "test.toml:21:8: prompt[3].name: must not start or end with white space",
    );
    assert_error(
        &replacing(13, ""),
        "test.toml:11:1: prompt[0].file: missing: give `file` (a WAV file, e.g. \"welcome.wav\") \
         or `audio` (an uploaded recording, \"sha256:…\")",
    );
}

#[test]
fn prompt_references_must_exist() {
    let no_prompt = |name: &str| {
        format!(
            "no [[prompt]] with name \"{name}\"; the prompts of enterprise \"acme\" are \"welcome\", \"main-menu\", \
             \"dial\""
        )
    };
    assert_error(
        &replacing(42, "welcome = \"hello\""),
        &format!("test.toml:42:11: menu[0].welcome: {}", no_prompt("hello")),
    );
    assert_error(
        &replacing(46, "prompt = \"menu\""),
        &format!(
            "test.toml:46:10: menu[0].node[0].prompt: {}",
            no_prompt("menu")
        ),
    );
    assert_error(
        &main_node_with(&["invalid = \"oops\""]),
        &format!(
            "test.toml:48:11: menu[0].node[0].invalid: {}",
            no_prompt("oops")
        ),
    );
    assert_error(
        &main_node_with(&["ringback = \"music\""]),
        &format!(
            "test.toml:48:12: menu[0].node[0].ringback: {}",
            no_prompt("music")
        ),
    );
    assert_error(
        &replacing(
            51,
            "\"0\" = { extension = { prompt = \"dail\", max_digits = 4 } }",
        ),
        &format!(
            "test.toml:51:32: menu[0].node[0].options.0.extension.prompt: {}",
            no_prompt("dail")
        ),
    );
    assert_error(
        &with(&["ringback = \"music\""]),
        &format!(
            "test.toml:66:12: number[0].ringback: {}",
            no_prompt("music")
        ),
    );
    assert_error(
        &inserting(38, &["ringback = \"music\""]),
        &format!(
            "test.toml:39:12: extension[0].ringback: {}",
            no_prompt("music")
        ),
    );
}

#[test]
fn a_file_without_prompts_says_so() {
    let mut lines = with(&[]);
    lines.drain(10..19);
    assert_errors(
        &lines,
        &[
            "test.toml:33:11: menu[0].welcome: no [[prompt]] with name \"welcome\"; the file \
             declares no [[prompt]]",
            "test.toml:37:10: menu[0].node[0].prompt: no [[prompt]] with name \"main-menu\"; \
             the file declares no [[prompt]]",
            "test.toml:42:32: menu[0].node[0].options.0.extension.prompt: no [[prompt]] with \
             name \"dial\"; the file declares no [[prompt]]",
            "test.toml:45:10: menu[0].node[1].prompt: no [[prompt]] with name \"main-menu\"; \
             the file declares no [[prompt]]",
        ],
    );
}

// ---- [[menu]] -------------------------------------------------------------------------

#[test]
fn menu_groups_must_exist_and_be_the_enterprises_own() {
    assert_error(
        &replacing(49, "\"1\" = { group = \"sale\" }"),
        "test.toml:49:17: menu[0].node[0].options.1.group: no [[group]] with name \"sale\"; the \
         groups of enterprise \"acme\" are \"sales\", \"desk\"",
    );
    assert_error(
        &replacing(49, "\"1\" = { group = \"beta-desk\" }"),
        "test.toml:49:17: menu[0].node[0].options.1.group: group \"beta-desk\" belongs to \
         enterprise \"beta\", not to \"acme\"; an enterprise can only use its own groups",
    );
    assert_error(
        &replacing(47, "default = { group = \"beta-desk\" }"),
        "test.toml:47:21: menu[0].node[0].default.group: group \"beta-desk\" belongs to \
         enterprise \"beta\", not to \"acme\"; an enterprise can only use its own groups",
    );
}

#[test]
fn menu_enterprise_must_exist_and_is_reported_once() {
    // The menu's groups are not also blamed for belonging to another enterprise.
    assert_error(
        &replacing(41, "enterprise = \"acm\""),
        "test.toml:41:14: menu[0].enterprise: no [[enterprise]] with id \"acm\"; the \
         enterprises are \"acme\", \"beta\"",
    );
}

#[test]
fn menu_nodes_must_exist() {
    assert_error(
        &replacing(50, "\"2\" = { menu = \"servce\" }"),
        "test.toml:50:16: menu[0].node[0].options.2.menu: no [[menu.node]] named \"servce\" in \
         menu \"acme-menu\"; its nodes are \"main\", \"service\"",
    );
    assert_error(
        &replacing(47, "default = { menu = \"night\" }"),
        "test.toml:47:20: menu[0].node[0].default.menu: no [[menu.node]] named \"night\" in \
         menu \"acme-menu\"; its nodes are \"main\", \"service\"",
    );
    assert_error(
        &replacing(43, "root = \"start\""),
        "test.toml:43:8: menu[0].root: no [[menu.node]] named \"start\" in menu \
         \"acme-menu\"; its nodes are \"main\", \"service\"",
    );
}

#[test]
fn a_menu_needs_nodes() {
    let mut lines = with(&[]);
    lines.drain(43..55);
    assert_error(
        &lines,
        "test.toml:39:1: menu[0].node: a menu needs at least one [[menu.node]], and one of \
         them named \"main\" (its root)",
    );
    let mut lines = with(&[]);
    lines.splice(43..55, ["node = []".to_owned()]);
    assert_error(
        &lines,
        "test.toml:44:8: menu[0].node: a menu needs at least one [[menu.node]], and one of \
         them named \"main\" (its root)",
    );
}

#[test]
fn duplicate_menu_and_node_names_are_rejected() {
    assert_error(
        &service_node_with(&[
            "[[menu.node]]",          // 56
            "name = \"main\"",        // 57
            "prompt = \"welcome\"",   // 58
            "default = \"previous\"", // 59: not the root, whatever its name
        ]),
        "test.toml:57:8: menu[0].node[2].name: duplicate node name \"main\": already declared \
         by menu[0].node[0] at line 45",
    );
    assert_error(
        &inserting(
            55,
            &[
                "[[menu]]",              // 56
                "name = \"acme-menu\"",  // 57
                "enterprise = \"beta\"", // 58
                "root = \"only\"",       // 59
                "[[menu.node]]",         // 60
                "name = \"only\"",       // 61
                "prompt = \"welcome\"",  // 62
                "default = \"hangup\"",  // 63
            ],
        ),
        "test.toml:57:8: menu[1].name: duplicate menu name \"acme-menu\": already declared by \
         menu[0] at line 40",
    );
    // Node names are per menu: another menu may have its own "main".
    let config = ok(&inserting(
        55,
        &[
            "[[menu]]",
            "name = \"beta-menu\"",
            "enterprise = \"beta\"",
            "root = \"main\"",
            "[[menu.node]]",
            "name = \"main\"",
            "prompt = \"welcome\"",
            "default = { group = \"beta-desk\" }",
        ],
    ));
    assert_eq!(config.menus[1].nodes[0].name, "main");
}

#[test]
fn a_digit_bound_twice_is_a_toml_error() {
    // TOML itself refuses a key written twice in one table, with its position.
    assert_error(
        &replacing(50, "\"1\" = { menu = \"service\" }"),
        "test.toml:50:1: duplicate key",
    );
    // Bare and quoted, it is the same key.
    assert_error(
        &replacing(50, "1 = \"repeat\""),
        "test.toml:50:1: duplicate key",
    );
}

#[test]
fn option_keys_are_keypad_keys() {
    assert_error(
        &replacing(49, "\"10\" = { group = \"sales\" }"),
        "test.toml:49:1: menu[0].node[0].options.10: invalid key \"10\": an option is one \
         keypad key, 0-9, * or #",
    );
    assert_error(
        &replacing(49, "\"A\" = { group = \"sales\" }"),
        "test.toml:49:1: menu[0].node[0].options.A: invalid key \"A\": an option is one \
         keypad key, 0-9, * or #",
    );
    assert_error(
        &replacing(49, "\"+\" = { group = \"sales\" }"),
        "test.toml:49:1: menu[0].node[0].options.\"+\": invalid key \"+\": an option is one \
         keypad key, 0-9, * or #",
    );
}

#[test]
fn actions_are_checked() {
    assert_error(
        &replacing(49, "\"1\" = \"again\""),
        "test.toml:49:7: menu[0].node[0].options.1: unknown action \"again\": expected \
         \"repeat\", \"previous\" or \"hangup\", or a table: { group = \"...\" }, \
         { menu = \"...\" } or { extension = { prompt = \"...\", max_digits = 4 } }",
    );
    assert_error(
        &replacing(49, "\"1\" = {}"),
        "test.toml:49:7: menu[0].node[0].options.1: an action table needs one of group, menu \
         or extension, e.g. { group = \"sales\" }",
    );
    assert_error(
        &replacing(49, "\"1\" = { group = \"sales\", menu = \"service\" }"),
        "test.toml:49:7: menu[0].node[0].options.1: an action does one thing: give one of \
         group, menu or extension, not group and menu",
    );
    assert_error(
        &replacing(49, "\"1\" = { grop = \"sales\" }"),
        "test.toml:49:9: menu[0].node[0].options.1.grop: unknown field \"grop\", expected one \
         of \"group\", \"menu\", \"extension\"",
    );
    assert_error(
        &replacing(49, "\"1\" = 1"),
        "test.toml:49:7: menu[0].node[0].options.1: invalid type: integer `1`, expected a menu \
         action: { group = \"...\" }, { menu = \"...\" }, { extension = { ... } }, \"repeat\", \
         \"previous\" or \"hangup\"",
    );
}

#[test]
fn defaults_must_move_the_call_on() {
    assert_error(
        &replacing(47, "default = \"repeat\""),
        "test.toml:47:11: menu[0].node[0].default: \"repeat\" cannot be a default: the \
         default is taken when the caller has made no valid choice, and repeating would keep \
         them in the menu for ever; use { group = \"...\" }, { menu = \"...\" }, \"previous\" \
         or \"hangup\"",
    );
    assert_error(
        &replacing(
            55,
            "default = { extension = { prompt = \"dial\", max_digits = 4 } }",
        ),
        "test.toml:55:11: menu[0].node[1].default: extension dialling cannot be a default: \
         the default is taken when the caller has made no valid choice; use \
         { group = \"...\" }, { menu = \"...\" }, \"previous\" or \"hangup\"",
    );
    assert_error(
        &replacing(47, "default = \"previous\""),
        "test.toml:47:11: menu[0].node[0].default: \"previous\" cannot be the root node's \
         default: the root has no previous menu; use { group = \"...\" }, { menu = \"...\" } \
         or \"hangup\"",
    );
    assert_error(
        &replacing(47, ""),
        "test.toml:44:1: menu[0].node[0].default: missing field \"default\"",
    );
    // "previous" as a key, even in the root, is fine: there it repeats the menu.
    assert!(parse(&replacing(49, "\"1\" = \"previous\"")).is_ok());
}

#[test]
fn node_settings_are_checked() {
    assert_error(
        &main_node_with(&["timeout = \"0s\""]),
        "test.toml:48:11: menu[0].node[0].timeout: \"0s\" is out of range; must be between 1s \
         and 5m",
    );
    assert_error(
        &main_node_with(&["timeout = \"301s\""]),
        "test.toml:48:11: menu[0].node[0].timeout: \"301s\" is out of range; must be between \
         1s and 5m",
    );
    assert_error(
        &main_node_with(&["timeout = \"five\""]),
        "test.toml:48:11: menu[0].node[0].timeout: invalid duration \"five\": write a whole \
         number and a unit (ms, s, m or h), e.g. \"5s\", \"500ms\", \"2m\" or \"1h\"; must be \
         between 1s and 5m",
    );
    assert_error(
        &main_node_with(&["retries = 0"]),
        "test.toml:48:11: menu[0].node[0].retries: 0 is out of range; must be between 1 and 10",
    );
    assert_error(
        &main_node_with(&["retries = 11"]),
        "test.toml:48:11: menu[0].node[0].retries: 11 is out of range; must be between 1 and 10",
    );
    assert_error(
        &main_node_with(&["retry = 3"]),
        "test.toml:48:1: menu[0].node[0].retry: unknown field \"retry\", expected one of \
         \"name\", \"prompt\", \"timeout\", \"retries\", \"invalid\", \"ringback\", \"default\", \
         \"options\"",
    );
}

#[test]
fn extension_dialling_is_checked() {
    let dialling = |settings: &str| {
        replacing(
            51,
            &format!("\"0\" = {{ extension = {{ prompt = \"dial\", {settings} }} }}"),
        )
    };
    let field = "menu[0].node[0].options.0.extension";
    assert_error(
        &dialling("max_digits = 0"),
        &format!(
            "test.toml:51:53: {field}.max_digits: 0 is out of range; must be between 1 and 32"
        ),
    );
    assert_error(
        &dialling("max_digits = 33"),
        &format!(
            "test.toml:51:53: {field}.max_digits: 33 is out of range; must be between 1 and 32"
        ),
    );
    assert_error(
        &dialling("max_digits = 4, terminator = \"0\""),
        &format!(
            "test.toml:51:69: {field}.terminator: invalid terminator \"0\": \"#\" or \"*\" (a \
             digit would be taken as part of the extension number)"
        ),
    );
    assert_error(
        &dialling("max_digits = 4, terminator = \"##\""),
        &format!(
            "test.toml:51:69: {field}.terminator: invalid terminator \"##\": \"#\" or \"*\" (a \
             digit would be taken as part of the extension number)"
        ),
    );
    assert_error(
        &dialling("max_digits = 4, inter_digit_timeout = \"0s\""),
        &format!(
            "test.toml:51:78: {field}.inter_digit_timeout: \"0s\" is out of range; must be \
             between 1s and 5m"
        ),
    );
    assert_error(
        &dialling("max_digits = 4, digits = 4"),
        &format!(
            "test.toml:51:56: {field}.digits: unknown field \"digits\", expected one of \
             \"prompt\", \"max_digits\", \"inter_digit_timeout\", \"terminator\""
        ),
    );
    assert_error(
        &replacing(51, "\"0\" = { extension = { prompt = \"dial\" } }"),
        &format!("test.toml:51:21: {field}.max_digits: missing field \"max_digits\""),
    );
}

#[test]
fn extension_dialling_needs_extensions() {
    let mut lines = with(&[]);
    lines.drain(34..38);
    assert_error(
        &lines,
        "test.toml:47:21: menu[0].node[0].options.0.extension: extension dialling, but \
         enterprise \"acme\" has no [[extension]]; declare its extensions, e.g. [[extension]] \
         enterprise = \"acme\", number = \"8001\", group = \"...\"",
    );
}

#[test]
fn a_malformed_menu_does_not_make_the_plans_reference_missing() {
    assert_error(
        &main_node_with(&["colour = \"blue\""]),
        "test.toml:48:1: menu[0].node[0].colour: unknown field \"colour\", expected one of \
         \"name\", \"prompt\", \"timeout\", \"retries\", \"invalid\", \"ringback\", \"default\", \
         \"options\"",
    );
}

// ---- [[extension]] --------------------------------------------------------------------

#[test]
fn extension_numbers_are_digits() {
    for bad in [
        "80-01",
        "",
        "8001 ",
        "１２３",
        "012345678901234567890123456789012",
    ] {
        let line = format!("number = \"{bad}\"");
        assert_error(
            &replacing(37, &line),
            &format!(
                "test.toml:37:10: extension[0].number: invalid extension number {bad:?}: 1 to \
                 32 digits with no separators, e.g. \"8001\""
            ),
        );
    }
}

#[test]
fn duplicate_extensions_are_rejected_per_enterprise() {
    assert_error(
        &inserting(
            38,
            &[
                "[[extension]]",         // 39
                "enterprise = \"acme\"", // 40
                "number = \"8001\"",     // 41
                "group = \"sales\"",     // 42
            ],
        ),
        "test.toml:41:10: extension[1].number: duplicate extension \"8001\" of enterprise \
         \"acme\": already declared by extension[0] at line 37",
    );
}

#[test]
fn extension_references_are_checked() {
    assert_error(
        &replacing(36, "enterprise = \"gamma\""),
        "test.toml:36:14: extension[0].enterprise: no [[enterprise]] with id \"gamma\"; the \
         enterprises are \"acme\", \"beta\"",
    );
    assert_error(
        &replacing(38, "group = \"front\""),
        "test.toml:38:9: extension[0].group: no [[group]] with name \"front\"; the groups of \
         enterprise \"acme\" are \"sales\", \"desk\"",
    );
    assert_error(
        &replacing(38, "group = \"beta-desk\""),
        "test.toml:38:9: extension[0].group: group \"beta-desk\" belongs to enterprise \
         \"beta\", not to \"acme\"; an enterprise can only use its own groups",
    );
    assert_error(
        &replacing(38, ""),
        "test.toml:35:1: extension[0].group: missing field \"group\"",
    );
}

// ---- media settings of enterprises, numbers and plans ---------------------------------

#[test]
fn recording_retention_is_checked() {
    for days in ["0", "3651"] {
        let line = format!("name = \"Acme\"\nrecording_retention_days = {days}");
        assert_error(
            &replacing(7, &line),
            &format!(
                "test.toml:8:28: enterprise[0].recording_retention_days: {days} is out of \
                 range; must be between 1 and 3650"
            ),
        );
    }
}

#[test]
fn number_media_settings_are_checked() {
    assert_error(
        &with(&["record = \"yes\""]),
        "test.toml:66:10: number[0].record: invalid type: string \"yes\", expected a boolean",
    );
}

#[test]
fn plan_menu_must_exist_and_be_the_enterprises_own() {
    assert_error(
        &replacing(60, "menu = \"acme\""),
        "test.toml:60:8: plan[0].menu: no [[menu]] with name \"acme\"; the menus of enterprise \
         \"acme\" are \"acme-menu\"",
    );
    let mut lines = inserting(
        55,
        &[
            "[[menu]]",                            // 56
            "name = \"beta-menu\"",                // 57
            "enterprise = \"beta\"",               // 58
            "root = \"main\"",                     // 59
            "[[menu.node]]",                       // 60
            "name = \"main\"",                     // 61
            "prompt = \"welcome\"",                // 62
            "default = { group = \"beta-desk\" }", // 63
        ],
    );
    lines[68 - 1] = "menu = \"beta-menu\"".into();
    assert_error(
        &lines,
        "test.toml:68:8: plan[0].menu: menu \"beta-menu\" belongs to enterprise \"beta\", not \
         to \"acme\"; an enterprise can only use its own menus",
    );
}

#[test]
fn plan_early_media_is_ringback_or_phone() {
    assert_error(
        &inserting(60, &["early_media = \"silence\""]),
        "test.toml:61:15: plan[0].early_media: unknown variant \"silence\", expected \
         \"ringback\" or \"phone\"",
    );
}

#[test]
fn errors_in_every_media_section_are_collected_in_file_order() {
    let mut lines = with(&["ringback = \"nope\"", "[media]", "rtp_ports = \"3-2\""]);
    lines[13 - 1] = "file = \"welcome\"".into();
    lines[38 - 1] = "group = \"nobody\"".into();
    lines[46 - 1] = "prompt = \"nothing\"".into();
    lines[55 - 1] = "default = \"repeat\"".into();
    lines[60 - 1] = "menu = \"nomenu\"".into();
    let found: Vec<(usize, String)> = errors(&lines)
        .into_iter()
        .map(|error| (error.line, error.field))
        .collect();
    assert_eq!(
        found,
        [
            (13, "prompt[0].file".to_owned()),
            (38, "extension[0].group".to_owned()),
            (46, "menu[0].node[0].prompt".to_owned()),
            (55, "menu[0].node[1].default".to_owned()),
            (60, "plan[0].menu".to_owned()),
            (66, "number[0].ringback".to_owned()),
            (68, "media.rtp_ports".to_owned()),
        ]
    );
}

#[test]
fn origin_names_the_file_in_every_error() {
    let text = file(&replacing(37, "number = \"x\""));
    let errors = Config::from_str(&text, "/etc/sihai/sihai.toml").expect_err("invalid");
    assert!(
        errors
            .to_string()
            .starts_with("/etc/sihai/sihai.toml:37:10: extension[0].number:"),
        "{errors}"
    );
}

#[test]
fn menus_whose_defaults_loop_are_reported_as_the_walker_would_refuse_them() {
    let mut lines = replacing(47, "default = { menu = \"service\" }");
    lines[54] = "default = { menu = \"main\" }".into();
    let shown: Vec<String> = super::errors(&lines)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(
        shown[0].starts_with("test.toml:39:1: menu[0]: ")
            && shown[0].contains("main > service > main"),
        "{shown:#?}"
    );
}

// ---- announcements --------------------------------------------------------------------

#[test]
fn announcements_are_read_and_a_number_overrides_its_plan_case_by_case() {
    let config = ok(&{
        let mut lines = inserting(
            60,
            &[
                "announcements = { after_hours = \"welcome\", busy = \"dial\", refused = \"dial\" }",
                "announcement_plays = 3",
            ],
        );
        lines.extend([
            "announcements = { busy = \"main-menu\", suspended = \"welcome\" }".to_string(),
            "announcement_plays = 5".to_string(),
        ]);
        lines
    });
    let plan = &config.plans[0];
    assert_eq!(plan.announcement_plays, 3);
    assert_eq!(
        plan.announcements,
        Announcements {
            after_hours: Some("welcome".into()),
            busy: Some("dial".into()),
            refused: Some("dial".into()),
            ..Announcements::default()
        }
    );
    let number = &config.numbers[0];
    assert_eq!(number.announcement_plays, Some(5));
    let merged = number.announcements.or(&plan.announcements);
    assert_eq!(merged.get(AnnouncementCase::Busy), Some("main-menu"));
    assert_eq!(merged.get(AnnouncementCase::Suspended), Some("welcome"));
    assert_eq!(merged.get(AnnouncementCase::AfterHours), Some("welcome"));
    assert_eq!(merged.get(AnnouncementCase::NoAnswer), None);

    // Left out: no announcement, played once.
    let config = ok(&with(&[]));
    assert!(config.plans[0].announcements.is_empty());
    assert_eq!(
        config.plans[0].announcement_plays,
        DEFAULT_ANNOUNCEMENT_PLAYS
    );
    assert_eq!(config.numbers[0].announcement_plays, None);
}

#[test]
fn announcement_prompts_must_exist() {
    let no_prompt = |name: &str| {
        format!(
            "no [[prompt]] with name \"{name}\"; the prompts of enterprise \"acme\" are \"welcome\", \"main-menu\", \
             \"dial\""
        )
    };
    assert_error(
        &inserting(60, &["announcements = { no_answer = \"nobody\" }"]),
        &format!(
            "test.toml:61:31: plan[0].announcements.no_answer: {}",
            no_prompt("nobody")
        ),
    );
    assert_error(
        &with(&["announcements = { suspended = \"in-arrears\" }"]),
        &format!(
            "test.toml:66:31: number[0].announcements.suspended: {}",
            no_prompt("in-arrears")
        ),
    );
}

#[test]
fn announcement_cases_and_plays_are_checked() {
    assert_error(
        &inserting(60, &["announcements = { closed = \"welcome\" }"]),
        "test.toml:61:19: plan[0].announcements.closed: unknown field \"closed\", expected \
         one of \"after_hours\", \"busy\", \"no_answer\", \"suspended\", \"refused\"",
    );
    assert_error(
        &inserting(60, &["announcements = \"welcome\""]),
        "test.toml:61:17: plan[0].announcements: invalid type: string \"welcome\", expected a \
         table of prompt names, e.g. { after_hours = \"after-hours\", busy = \"busy\" }",
    );
    for plays in ["0", "6"] {
        assert_error(
            &inserting(60, &[&format!("announcement_plays = {plays}")]),
            &format!(
                "test.toml:61:22: plan[0].announcement_plays: {plays} is out of range; must be \
                 between 1 and 5"
            ),
        );
    }
    assert_error(
        &with(&["announcement_plays = 10"]),
        "test.toml:66:22: number[0].announcement_plays: 10 is out of range; must be between 1 \
         and 5",
    );
}

#[test]
fn a_prompt_is_a_file_or_an_uploaded_recording_and_an_enterprises_own_prompt_is_its_alone() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let audio = format!("audio = \"{digest}\"");
    // Acme's own uploaded welcome, used by acme's menu.
    let mut lines = inserting(12, &["enterprise = \"acme\""]);
    lines[14 - 1] = audio.clone();
    let config = ok(&lines);
    assert_eq!(
        config.prompts[0],
        PromptConfig {
            name: "welcome".into(),
            enterprise: Some("acme".into()),
            source: PromptSource::Audio(digest.clone()),
        }
    );
    assert_eq!(config.prompts[0].file(), None);

    // Beta's prompt is not acme's to use.
    assert_error(
        &inserting(12, &["enterprise = \"beta\""]),
        "test.toml:43:11: menu[0].welcome: prompt \"welcome\" belongs to enterprise \"beta\", \
         not to \"acme\"; an enterprise can only use its own prompts",
    );
    // Exactly one of file and audio.
    assert_error(
        &inserting(13, &[&audio]),
        "test.toml:14:9: prompt[0].audio: give either `file` (a WAV file on the node) or \
         `audio` (an uploaded recording), not both",
    );
    assert_error(
        &replacing(13, "audio = \"sha256:abc\""),
        "test.toml:13:9: prompt[0].audio: \"sha256:abc\" is not an uploaded recording's \
         digest: \"sha256:\" and 64 lower-case hex digits, as the API's upload writes it",
    );
    let unknown = errors(&inserting(12, &["enterprise = \"gamma\""]));
    assert_eq!(
        unknown
            .iter()
            .map(|e| (e.line, e.field.as_str()))
            .collect::<Vec<_>>(),
        [(13, "prompt[0].enterprise")],
        "{unknown:?}"
    );
}
