//! What `MenuTree::new` refuses, and that each refusal names the node and field an
//! operator has to fix.

use std::time::Duration;

use sihai_ivr::{
    ExtensionDialling, MAX_EXTENSION_DIGITS, MAX_RETRIES_LIMIT, MAX_WAIT, MenuAction, MenuError,
    MenuNode, MenuTree,
};

fn group(name: &str) -> MenuAction {
    MenuAction::Group(name.to_owned())
}

fn menu(name: &str) -> MenuAction {
    MenuAction::Menu(name.to_owned())
}

fn node(name: &str) -> MenuNode {
    MenuNode::new(name, format!("{name}-prompt").as_str(), group("operator"))
}

fn build(nodes: Vec<MenuNode>) -> Result<MenuTree, MenuError> {
    MenuTree::new(None, "main", nodes)
}

#[test]
fn a_full_menu_is_accepted_and_inspectable() {
    let tree = MenuTree::new(
        Some("welcome".into()),
        "main",
        vec![
            node("main")
                .with_option('1', menu("sales"))
                .with_option(
                    '0',
                    MenuAction::Extension(ExtensionDialling::new("dial", 4)),
                )
                .with_option('*', MenuAction::Repeat)
                .with_option('#', MenuAction::Hangup),
            node("sales")
                .with_option('0', MenuAction::Previous)
                .with_option('9', menu("main")),
        ],
    )
    .unwrap();
    assert_eq!(tree.root().name, "main");
    assert_eq!(tree.welcome().map(|prompt| &**prompt), Some("welcome"));
    assert_eq!(tree.nodes().len(), 2);
    assert_eq!(tree.node("sales").map(|node| node.options.len()), Some(2));
    assert!(tree.node("nowhere").is_none());
}

#[test]
fn defaults_of_new_nodes() {
    let node = MenuNode::new("main", "p", MenuAction::Hangup);
    assert_eq!(node.timeout, Duration::from_secs(5));
    assert_eq!(node.max_retries, 3);
    assert!(node.options.is_empty() && node.invalid_prompt.is_none() && node.ringback.is_none());
    let dialling = ExtensionDialling::new("dial", 4);
    assert_eq!(dialling.terminator, '#');
    assert_eq!(dialling.inter_digit_timeout, Duration::from_secs(3));
}

#[test]
fn unknown_menu_target_of_a_key() {
    let error = build(vec![node("main").with_option('1', menu("slaes"))]).unwrap_err();
    assert_eq!(
        error,
        MenuError::UnknownTarget {
            node: "main".to_owned(),
            by: "key '1'".to_owned(),
            target: "slaes".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        "menu node \"main\": key '1' goes to menu \"slaes\", which is not one of the menu nodes"
    );
}

#[test]
fn unknown_menu_target_of_a_default() {
    let error = build(vec![MenuNode::new("main", "p", menu("gone"))]).unwrap_err();
    assert_eq!(
        error,
        MenuError::UnknownTarget {
            node: "main".to_owned(),
            by: "the default".to_owned(),
            target: "gone".to_owned()
        }
    );
}

#[test]
fn unknown_root() {
    let error = MenuTree::new(None, "mian", vec![node("main")]).unwrap_err();
    assert_eq!(
        error,
        MenuError::UnknownRoot {
            root: "mian".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        "root menu \"mian\" is not one of the menu nodes"
    );
    assert_eq!(
        MenuTree::new(None, "main", Vec::new()).unwrap_err(),
        MenuError::UnknownRoot {
            root: "main".to_owned()
        }
    );
}

#[test]
fn duplicate_key_in_a_node() {
    let error = build(vec![
        node("main")
            .with_option('1', group("a"))
            .with_option('2', group("b"))
            .with_option('1', group("c")),
    ])
    .unwrap_err();
    assert_eq!(
        error,
        MenuError::DuplicateKey {
            node: "main".to_owned(),
            key: '1'
        }
    );
}

#[test]
fn the_same_key_in_different_nodes_is_fine() {
    let tree = build(vec![
        node("main").with_option('1', menu("sub")),
        node("sub").with_option('1', group("x")),
    ]);
    assert!(tree.is_ok());
}

#[test]
fn duplicate_node_name() {
    let error = build(vec![node("main"), node("sales"), node("sales")]).unwrap_err();
    assert_eq!(
        error,
        MenuError::DuplicateNode {
            node: "sales".to_owned()
        }
    );
}

#[test]
fn empty_node_name() {
    let error = build(vec![node("main"), node("")]).unwrap_err();
    assert_eq!(error, MenuError::EmptyNodeName { index: 1 });
}

#[test]
fn keys_outside_the_keypad() {
    for key in ['A', 'd', ' ', '>', 'x', '５'] {
        let error = build(vec![node("main").with_option(key, group("a"))]).unwrap_err();
        assert_eq!(
            error,
            MenuError::InvalidKey {
                node: "main".to_owned(),
                key
            }
        );
    }
}

#[test]
fn every_keypad_key_can_be_bound() {
    let mut main = node("main");
    for key in "0123456789*#".chars() {
        main = main.with_option(key, group(&format!("group-{key}")));
    }
    assert!(build(vec![main]).is_ok());
}

#[test]
fn max_digits_zero_and_too_many() {
    for max_digits in [0, MAX_EXTENSION_DIGITS + 1] {
        let dialling = ExtensionDialling::new("dial", max_digits);
        let error = build(vec![
            node("main").with_option('0', MenuAction::Extension(dialling)),
        ])
        .unwrap_err();
        assert_eq!(
            error,
            MenuError::ExtensionDigitsOutOfRange {
                node: "main".to_owned(),
                key: '0',
                value: max_digits,
                max: MAX_EXTENSION_DIGITS
            }
        );
    }
    let longest = ExtensionDialling::new("dial", MAX_EXTENSION_DIGITS);
    assert!(
        build(vec![
            node("main").with_option('0', MenuAction::Extension(longest))
        ])
        .is_ok()
    );
}

#[test]
fn terminator_must_be_hash_or_star() {
    for terminator in ['1', 'A', ' '] {
        let dialling = ExtensionDialling {
            terminator,
            ..ExtensionDialling::new("dial", 4)
        };
        let error = build(vec![
            node("main").with_option('0', MenuAction::Extension(dialling)),
        ])
        .unwrap_err();
        assert_eq!(
            error,
            MenuError::InvalidTerminator {
                node: "main".to_owned(),
                key: '0',
                terminator
            }
        );
    }
}

#[test]
fn inter_digit_timeout_must_be_sane() {
    for wait in [Duration::ZERO, MAX_WAIT + Duration::from_millis(1)] {
        let dialling = ExtensionDialling {
            inter_digit_timeout: wait,
            ..ExtensionDialling::new("dial", 4)
        };
        let error = build(vec![
            node("main").with_option('5', MenuAction::Extension(dialling)),
        ])
        .unwrap_err();
        assert_eq!(
            error,
            MenuError::WaitOutOfRange {
                node: "main".to_owned(),
                field: "inter_digit_timeout of key '5'".to_owned(),
                value: wait,
                max: MAX_WAIT
            }
        );
    }
}

#[test]
fn key_timeout_must_be_sane() {
    for wait in [
        Duration::ZERO,
        Duration::from_micros(999),
        MAX_WAIT + Duration::from_secs(1),
    ] {
        let error = build(vec![node("main").with_timeout(wait)]).unwrap_err();
        assert_eq!(
            error,
            MenuError::WaitOutOfRange {
                node: "main".to_owned(),
                field: "timeout".to_owned(),
                value: wait,
                max: MAX_WAIT
            }
        );
    }
    assert!(build(vec![node("main").with_timeout(MAX_WAIT)]).is_ok());
    assert!(build(vec![node("main").with_timeout(Duration::from_millis(1))]).is_ok());
}

#[test]
fn max_retries_must_be_sane() {
    for retries in [0, MAX_RETRIES_LIMIT + 1] {
        let error = build(vec![node("main").with_max_retries(retries)]).unwrap_err();
        assert_eq!(
            error,
            MenuError::RetriesOutOfRange {
                node: "main".to_owned(),
                value: retries,
                max: MAX_RETRIES_LIMIT
            }
        );
    }
    assert!(build(vec![node("main").with_max_retries(1)]).is_ok());
    assert!(build(vec![node("main").with_max_retries(MAX_RETRIES_LIMIT)]).is_ok());
}

#[test]
fn empty_prompts_and_group_names() {
    assert_eq!(
        MenuTree::new(Some("".into()), "main", vec![node("main")]).unwrap_err(),
        MenuError::EmptyWelcomePrompt
    );
    let error = build(vec![MenuNode::new("main", "", MenuAction::Hangup)]).unwrap_err();
    assert_eq!(
        error,
        MenuError::EmptyPrompt {
            node: "main".to_owned(),
            prompt: "prompt".to_owned()
        }
    );
    let error = build(vec![node("main").with_invalid_prompt("")]).unwrap_err();
    assert!(
        matches!(error, MenuError::EmptyPrompt { ref prompt, .. } if prompt == "invalid_prompt")
    );
    let error = build(vec![node("main").with_ringback("")]).unwrap_err();
    assert!(matches!(error, MenuError::EmptyPrompt { ref prompt, .. } if prompt == "ringback"));
    let dialling = ExtensionDialling::new("", 4);
    let error = build(vec![
        node("main").with_option('0', MenuAction::Extension(dialling)),
    ])
    .unwrap_err();
    assert!(
        matches!(error, MenuError::EmptyPrompt { ref prompt, .. } if prompt.contains("key '0'"))
    );
    let error = build(vec![node("main").with_option('3', group(""))]).unwrap_err();
    assert_eq!(
        error,
        MenuError::EmptyGroupName {
            node: "main".to_owned(),
            by: "key '3'".to_owned()
        }
    );
    let error = build(vec![MenuNode::new("main", "p", group(""))]).unwrap_err();
    assert_eq!(
        error,
        MenuError::EmptyGroupName {
            node: "main".to_owned(),
            by: "the default".to_owned()
        }
    );
}

#[test]
fn empty_options_with_an_ending_default_are_allowed() {
    assert!(build(vec![MenuNode::new("main", "p", group("duty"))]).is_ok());
    assert!(build(vec![MenuNode::new("main", "p", MenuAction::Hangup)]).is_ok());
}

#[test]
fn defaults_that_never_end_are_refused() {
    let cases = [
        (MenuAction::Repeat, "repeat"),
        (
            MenuAction::Extension(ExtensionDialling::new("dial", 4)),
            "extension dialling",
        ),
        (MenuAction::Previous, "previous menu at the root"),
    ];
    for (default, action) in cases {
        // With and without keys: a caller who presses nothing never leaves either way.
        for with_keys in [false, true] {
            let mut main = MenuNode::new("main", "p", default.clone());
            if with_keys {
                main = main.with_option('1', group("sales"));
            }
            let error = build(vec![main]).unwrap_err();
            assert_eq!(
                error,
                MenuError::UnusableDefault {
                    node: "main".to_owned(),
                    action: action.to_owned()
                }
            );
        }
    }
}

#[test]
fn previous_as_a_default_below_the_root_is_allowed() {
    let tree = build(vec![
        node("main").with_option('1', menu("sub")),
        MenuNode::new("sub", "p", MenuAction::Previous),
    ]);
    assert!(tree.is_ok());
}

#[test]
fn default_loops_are_refused() {
    let error = build(vec![
        MenuNode::new("main", "p", menu("a")),
        MenuNode::new("a", "p", menu("b")),
        MenuNode::new("b", "p", menu("a")),
    ])
    .unwrap_err();
    assert_eq!(
        error,
        MenuError::DefaultLoop {
            node: "a".to_owned(),
            cycle: "a > b > a".to_owned()
        }
    );
    assert_eq!(
        error.to_string(),
        "menu node \"a\": the defaults go round in a loop (a > b > a), so a caller who presses nothing would never leave the menu"
    );
}

#[test]
fn a_previous_default_back_to_a_menu_whose_default_leads_here_is_a_loop() {
    let error = build(vec![
        MenuNode::new("main", "p", menu("sub")),
        MenuNode::new("sub", "p", MenuAction::Previous),
    ])
    .unwrap_err();
    assert_eq!(
        error,
        MenuError::DefaultLoop {
            node: "main".to_owned(),
            cycle: "main > sub > main".to_owned()
        }
    );
}

#[test]
fn keys_may_loop_freely() {
    // Keys are the caller's choice; only defaults must end.
    let tree = build(vec![
        node("main").with_option('1', menu("sub")),
        node("sub")
            .with_option('1', menu("main"))
            .with_option('2', menu("sub")),
    ]);
    assert!(tree.is_ok());
}
