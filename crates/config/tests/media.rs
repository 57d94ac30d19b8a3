//! The media configuration as the daemon will read it: loaded from a file on disk, its
//! relative paths resolved against that file's directory, the sample configuration's
//! switchboard complete, and every menu the crate accepts also accepted by the menu
//! walker (`sihai-ivr`) the daemon builds from it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sihai_config::{
    AnnouncementCase, Config, DEFAULT_RTP_PORTS, EarlyMedia, MenuActionConfig, NumberStatus,
    PromptConfig, PromptSource,
};

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/sihai.toml")
}

fn sample() -> Config {
    Config::load(&sample_path()).unwrap_or_else(|errors| panic!("{errors}"))
}

#[test]
fn relative_media_paths_follow_the_configuration_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_dir = dir.path().join("etc");
    std::fs::create_dir(&config_dir).expect("mkdir");
    let path = config_dir.join("sihai.toml");
    std::fs::write(
        &path,
        "[sip]\n\
         [[sip.listen]]\n\
         transport = \"udp\"\n\
         address = \"127.0.0.1:5060\"\n\
         [media]\n\
         prompts = \"sounds\"\n\
         [[prompt]]\n\
         name = \"welcome\"\n\
         file = \"zh/welcome.wav\"\n\
         [[prompt]]\n\
         name = \"busy\"\n\
         file = \"/opt/sihai/busy.wav\"\n",
    )
    .expect("write config");
    // Neither directory nor file exists: checking a configuration does not need them.
    let config = Config::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.media.recordings, config_dir.join("recordings"));
    assert_eq!(config.media.prompts_dir, config_dir.join("sounds"));
    assert_eq!(
        config.prompts,
        [
            PromptConfig {
                name: "welcome".into(),
                enterprise: None,
                source: PromptSource::File(config_dir.join("sounds/zh/welcome.wav")),
            },
            PromptConfig {
                name: "busy".into(),
                enterprise: None,
                source: PromptSource::File(PathBuf::from("/opt/sihai/busy.wav")),
            },
        ]
    );
}

#[test]
fn the_sample_media_section_spells_out_the_defaults() {
    let config = sample();
    let config_dir = sample_path()
        .parent()
        .expect("config directory")
        .to_path_buf();
    let first_listen = config.sip.listen[0].address.ip();
    assert_eq!(config.media.address, first_listen);
    assert_eq!(config.media.rtp_ports, DEFAULT_RTP_PORTS);
    assert_eq!(config.media.media_timeout, Duration::from_secs(30));
    assert_eq!(config.media.recordings, config_dir.join("recordings"));
    assert_eq!(config.media.prompts_dir, config_dir.join("prompts"));
}

#[test]
fn the_sample_declares_the_default_prompts() {
    let config = sample();
    let prompts_dir = &config.media.prompts_dir;
    for name in [
        "welcome",
        "invalid-key",
        "please-hold",
        "after-hours",
        "busy",
        "dial-extension",
        "no-answer",
        "suspended",
        "refused",
    ] {
        let prompt = config
            .prompts
            .iter()
            .find(|prompt| prompt.name == name)
            .unwrap_or_else(|| panic!("prompt {name} in the sample"));
        assert_eq!(
            prompt.source,
            PromptSource::File(prompts_dir.join(format!("{name}.wav")))
        );
    }
}

#[test]
fn the_sample_has_a_switchboard() {
    let config = sample();
    let number = config
        .numbers
        .iter()
        .find(|number| number.record)
        .expect("a recorded number in the sample");
    assert!(number.ringback.is_some());
    let plan = config
        .plans
        .iter()
        .find(|plan| plan.name == number.plan)
        .expect("its plan");
    assert_eq!(plan.early_media, EarlyMedia::Ringback);
    let menu = config
        .menus
        .iter()
        .find(|menu| Some(&menu.name) == plan.menu.as_ref())
        .expect("its menu");
    assert_eq!(menu.enterprise, number.enterprise);

    // Two levels: the root leads to a sub-menu, which leads back.
    let root = menu.node(&menu.root).expect("root node");
    let sub_menu = root
        .options
        .iter()
        .find_map(|(_, action)| match action {
            MenuActionConfig::Menu(node) => menu.node(node),
            _ => None,
        })
        .expect("a sub-menu");
    assert!(
        sub_menu
            .options
            .iter()
            .any(|(_, action)| *action == MenuActionConfig::Previous)
    );
    // 0 dials an extension, and the enterprise has two.
    assert!(matches!(
        root.options.iter().find(|(key, _)| *key == '0'),
        Some((_, MenuActionConfig::Extension { .. }))
    ));
    let extensions: Vec<&str> = config
        .extensions
        .iter()
        .filter(|extension| extension.enterprise == menu.enterprise)
        .map(|extension| extension.number.as_str())
        .collect();
    assert_eq!(extensions, ["8001", "8002"]);
    let enterprise = config
        .enterprises
        .iter()
        .find(|enterprise| enterprise.id == menu.enterprise)
        .expect("enterprise");
    assert_eq!(enterprise.recording_retention_days, 90);
}

#[test]
fn the_menu_walker_accepts_the_sample_menus_and_finds_their_prompts() {
    let config = sample();
    assert!(!config.menus.is_empty());
    for menu in &config.menus {
        let tree = menu
            .tree()
            .unwrap_or_else(|error| panic!("{}: {error}", menu.name));
        for prompt in tree.prompts() {
            assert!(
                config.prompts.iter().any(|p| p.name == prompt.as_ref()),
                "{}: prompt {prompt} is not declared",
                menu.name
            );
        }
    }
}

#[test]
fn the_menu_walker_accepts_the_limits_this_crate_accepts() {
    // Every bound at its extreme: the two crates must agree on them.
    let text = "[sip]\n\
        [[sip.listen]]\n\
        transport = \"udp\"\n\
        address = \"127.0.0.1:5060\"\n\
        [[prompt]]\n\
        name = \"p\"\n\
        file = \"p.wav\"\n\
        [[enterprise]]\n\
        id = \"e\"\n\
        name = \"E\"\n\
        [[group]]\n\
        name = \"g\"\n\
        enterprise = \"e\"\n\
        strategy = \"random\"\n\
        phones = [{ number = \"13900000001\" }]\n\
        [[extension]]\n\
        enterprise = \"e\"\n\
        number = \"1\"\n\
        group = \"g\"\n\
        [[menu]]\n\
        name = \"m\"\n\
        enterprise = \"e\"\n\
        root = \"a\"\n\
        [[menu.node]]\n\
        name = \"a\"\n\
        prompt = \"p\"\n\
        timeout = \"1s\"\n\
        retries = 1\n\
        default = { menu = \"b\" }\n\
        options = { \"0\" = { extension = { prompt = \"p\", max_digits = 1, inter_digit_timeout = \"1s\" } }, \"#\" = \"previous\" }\n\
        [[menu.node]]\n\
        name = \"b\"\n\
        prompt = \"p\"\n\
        timeout = \"300s\"\n\
        retries = 10\n\
        default = \"hangup\"\n\
        options = { \"*\" = { extension = { prompt = \"p\", max_digits = 32, inter_digit_timeout = \"5m\", terminator = \"*\" } } }\n";
    let config = Config::from_str(text, "limits.toml").unwrap_or_else(|errors| panic!("{errors}"));
    config.menus[0]
        .tree()
        .unwrap_or_else(|error| panic!("{error}"));
}

#[test]
fn every_prompt_of_the_sample_ships_as_a_wav_file() {
    for prompt in &sample().prompts {
        let file = prompt
            .file()
            .unwrap_or_else(|| panic!("{}: the sample's prompts are files", prompt.name));
        let bytes = std::fs::read(file)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", prompt.name, file.display()));
        // RIFF....WAVE: scripts/make-prompts writes them, and it must cover every name.
        assert!(
            bytes.len() > 44 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
            "{}: {} is not a WAV file",
            prompt.name,
            file.display()
        );
    }
}

#[test]
fn the_sample_numbers_announce_every_case() {
    let config = sample();
    for case in AnnouncementCase::ALL {
        let announcing = config.numbers.iter().find(|number| {
            let plan = config
                .plans
                .iter()
                .find(|plan| plan.name == number.plan)
                .expect("the number's plan");
            let applies = match case {
                AnnouncementCase::Suspended => number.status == NumberStatus::Suspended,
                AnnouncementCase::AfterHours => {
                    plan.schedule.is_some() && plan.after_hours.is_none()
                }
                _ => number.status == NumberStatus::Active,
            };
            applies
                && number
                    .announcements
                    .or(&plan.announcements)
                    .get(case)
                    .is_some()
        });
        assert!(
            announcing.is_some(),
            "no sample number plays a {} announcement",
            case.key()
        );
    }
}
