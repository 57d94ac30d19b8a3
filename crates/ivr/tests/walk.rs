//! Calls walking menus the way callers do: choosing, getting lost, going back, barging
//! in, dialling extensions, saying nothing. Each test drives one [`MenuWalk`] with a
//! fake clock and checks every action it asks for, in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sihai_ivr::{
    ExtensionDialling, IvrAction, MenuAction, MenuNode, MenuTree, MenuWalk, Outcome, PromptName,
};

fn group(name: &str) -> MenuAction {
    MenuAction::Group(name.to_owned())
}

fn menu(name: &str) -> MenuAction {
    MenuAction::Menu(name.to_owned())
}

fn play(prompt: &str) -> IvrAction {
    IvrAction::Play(prompt.into())
}

fn done_group(name: &str, ringback: Option<&str>) -> IvrAction {
    IvrAction::Done(Outcome::Group {
        group: name.to_owned(),
        ringback: ringback.map(PromptName::from),
    })
}

fn done_extension(number: &str, ringback: Option<&str>) -> IvrAction {
    IvrAction::Done(Outcome::Extension {
        number: number.to_owned(),
        ringback: ringback.map(PromptName::from),
    })
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// A switchboard: welcome, then
/// main: 1 sales sub-menu, 2 service, 0 extension, 9 repeat, * hang up; default operator.
/// sales: 1 pre-sales, 3 key accounts, 0 previous, 9 back to main; default Previous.
fn switchboard() -> Arc<MenuTree> {
    let extension = ExtensionDialling {
        inter_digit_timeout: secs(3),
        ..ExtensionDialling::new("dial-extension", 4)
    };
    let main = MenuNode::new("main", "main-menu", group("operator"))
        .with_option('1', menu("sales"))
        .with_option('2', group("service"))
        .with_option('0', MenuAction::Extension(extension))
        .with_option('9', MenuAction::Repeat)
        .with_option('*', MenuAction::Hangup)
        .with_invalid_prompt("invalid-key")
        .with_ringback("main-ringback");
    let sales = MenuNode::new("sales", "sales-menu", MenuAction::Previous)
        .with_option('1', group("pre-sales"))
        .with_option('3', group("key-accounts"))
        .with_option('0', MenuAction::Previous)
        .with_option('9', menu("main"))
        .with_max_retries(2)
        .with_timeout(secs(4))
        .with_ringback("sales-ringback");
    Arc::new(MenuTree::new(Some("welcome".into()), "main", vec![main, sales]).unwrap())
}

/// Drains every pending action.
fn drain(walk: &mut MenuWalk) -> Vec<IvrAction> {
    std::iter::from_fn(|| walk.poll_action()).collect()
}

/// Starts at `t0` and plays the welcome and main menu to the end at `t0 + 10 s`.
fn waiting_in_main(t0: Instant) -> MenuWalk {
    let mut walk = MenuWalk::start(switchboard(), t0);
    assert_eq!(drain(&mut walk), [play("welcome"), play("main-menu")]);
    walk.on_prompt_finished(t0 + secs(4));
    walk.on_prompt_finished(t0 + secs(10));
    walk
}

#[test]
fn start_plays_welcome_then_menu_and_a_key_routes_to_its_group() {
    let t0 = Instant::now();
    let mut walk = MenuWalk::start(switchboard(), t0);
    assert_eq!(drain(&mut walk), [play("welcome"), play("main-menu")]);
    assert_eq!(walk.poll_timeout(), None, "no key timer while prompts play");

    walk.on_prompt_finished(t0 + secs(4));
    assert_eq!(
        walk.poll_timeout(),
        None,
        "the welcome ending starts no timer"
    );
    walk.on_prompt_finished(t0 + secs(10));
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(15)));

    walk.on_digit('2', t0 + secs(12));
    assert_eq!(
        drain(&mut walk),
        [done_group("service", Some("main-ringback"))]
    );
    assert_eq!(walk.path(), "2");
    assert_eq!(
        walk.outcome(),
        Some(&Outcome::Group {
            group: "service".to_owned(),
            ringback: Some("main-ringback".into())
        })
    );
    assert!(walk.is_done());
    assert_eq!(walk.poll_timeout(), None);
    assert_eq!(walk.started_at(), t0);
    assert_eq!(walk.finished_at(), Some(t0 + secs(12)));
}

#[test]
fn without_a_welcome_only_the_root_prompt_plays() {
    let t0 = Instant::now();
    let tree = MenuTree::new(
        None,
        "main",
        vec![MenuNode::new("main", "m", MenuAction::Hangup)],
    );
    let mut walk = MenuWalk::start(Arc::new(tree.unwrap()), t0);
    assert_eq!(drain(&mut walk), [play("m")]);
    walk.on_prompt_finished(t0 + secs(1));
    assert_eq!(
        walk.poll_timeout(),
        Some(t0 + secs(6)),
        "default timeout is 5 s"
    );
}

#[test]
fn two_levels_route_with_the_sub_menu_ringback() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('1', t0 + secs(11));
    assert_eq!(drain(&mut walk), [play("sales-menu")]);
    assert_eq!(walk.current_menu(), "sales");
    walk.on_prompt_finished(t0 + secs(15));
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(19)), "sales waits 4 s");
    walk.on_digit('3', t0 + secs(16));
    assert_eq!(
        drain(&mut walk),
        [done_group("key-accounts", Some("sales-ringback"))]
    );
    assert_eq!(walk.path(), "1>3");
}

#[test]
fn previous_replays_the_parent_and_the_path_keeps_every_choosing_key() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('1', t0 + secs(11));
    walk.on_prompt_finished(t0 + secs(15));
    walk.on_digit('0', t0 + secs(16));
    assert_eq!(drain(&mut walk), [play("sales-menu"), play("main-menu")]);
    assert_eq!(walk.current_menu(), "main");
    walk.on_prompt_finished(t0 + secs(20));
    walk.on_digit('2', t0 + secs(21));
    assert_eq!(
        drain(&mut walk),
        [done_group("service", Some("main-ringback"))]
    );
    assert_eq!(walk.path(), "1>0>2");
}

#[test]
fn a_key_naming_a_menu_on_the_trail_goes_back_to_it() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('1', t0 + secs(11));
    walk.on_digit('9', t0 + secs(12));
    assert_eq!(
        drain(&mut walk),
        [
            play("sales-menu"),
            IvrAction::StopPlayback,
            play("main-menu")
        ]
    );
    assert_eq!(walk.current_menu(), "main");
    // Back at main: its own keys apply again.
    walk.on_digit('*', t0 + secs(13));
    assert_eq!(
        drain(&mut walk),
        [IvrAction::StopPlayback, IvrAction::Done(Outcome::Hangup)]
    );
    assert_eq!(walk.path(), "1>9>*");
}

#[test]
fn previous_at_the_root_repeats_the_root() {
    let t0 = Instant::now();
    let tree = MenuTree::new(
        None,
        "main",
        vec![
            MenuNode::new("main", "main-menu", MenuAction::Hangup)
                .with_option('0', MenuAction::Previous)
                .with_option('1', group("g")),
        ],
    );
    let mut walk = MenuWalk::start(Arc::new(tree.unwrap()), t0);
    drain(&mut walk);
    walk.on_prompt_finished(t0 + secs(2));
    walk.on_digit('0', t0 + secs(3));
    assert_eq!(drain(&mut walk), [play("main-menu")]);
    assert_eq!(walk.poll_timeout(), None);
    walk.on_prompt_finished(t0 + secs(5));
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(10)));
    walk.on_digit('1', t0 + secs(6));
    assert_eq!(drain(&mut walk), [done_group("g", None)]);
    assert_eq!(walk.path(), "0>1");
}

#[test]
fn repeat_replays_the_menu_and_restarts_the_timer_after_it() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('9', t0 + secs(11));
    assert_eq!(drain(&mut walk), [play("main-menu")]);
    assert_eq!(walk.poll_timeout(), None);
    walk.on_prompt_finished(t0 + secs(17));
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(22)));
    assert_eq!(walk.path(), "9");
}

#[test]
fn an_invalid_key_plays_the_invalid_prompt_then_the_menu_again() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('7', t0 + secs(11));
    assert_eq!(drain(&mut walk), [play("invalid-key"), play("main-menu")]);
    assert_eq!(walk.poll_timeout(), None);
    walk.on_prompt_finished(t0 + secs(13));
    assert_eq!(
        walk.poll_timeout(),
        None,
        "the invalid prompt ending starts no timer"
    );
    walk.on_prompt_finished(t0 + secs(19));
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(24)));
    assert_eq!(walk.path(), "", "an invalid key chose nothing");
}

#[test]
fn an_invalid_key_during_a_prompt_stops_it_first() {
    let t0 = Instant::now();
    let mut walk = MenuWalk::start(switchboard(), t0);
    drain(&mut walk);
    walk.on_prompt_finished(t0 + secs(4));
    walk.on_digit('#', t0 + secs(5));
    assert_eq!(
        drain(&mut walk),
        [
            IvrAction::StopPlayback,
            play("invalid-key"),
            play("main-menu")
        ]
    );
}

#[test]
fn keys_that_no_keypad_sends_are_invalid() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('A', t0 + secs(11));
    assert_eq!(drain(&mut walk), [play("invalid-key"), play("main-menu")]);
}

#[test]
fn retries_run_out_into_the_default_group() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('7', t0 + secs(11));
    walk.on_digit('8', t0 + secs(12));
    assert_eq!(
        drain(&mut walk),
        [
            play("invalid-key"),
            play("main-menu"),
            IvrAction::StopPlayback,
            play("invalid-key"),
            play("main-menu")
        ]
    );
    walk.on_digit('6', t0 + secs(13));
    assert_eq!(
        drain(&mut walk),
        [
            IvrAction::StopPlayback,
            done_group("operator", Some("main-ringback"))
        ]
    );
    assert_eq!(walk.path(), "");
}

#[test]
fn retries_run_out_into_hangup() {
    let t0 = Instant::now();
    let tree = MenuTree::new(
        None,
        "main",
        vec![
            MenuNode::new("main", "m", MenuAction::Hangup)
                .with_option('1', group("g"))
                .with_max_retries(1),
        ],
    );
    let mut walk = MenuWalk::start(Arc::new(tree.unwrap()), t0);
    drain(&mut walk);
    walk.on_prompt_finished(t0);
    walk.on_digit('2', t0 + secs(1));
    assert_eq!(drain(&mut walk), [IvrAction::Done(Outcome::Hangup)]);
    assert_eq!(walk.outcome(), Some(&Outcome::Hangup));
}

#[test]
fn timeouts_count_like_invalid_keys_and_the_timer_starts_after_the_menu_prompt() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(15)));

    walk.handle_timeout(t0 + secs(14));
    assert!(drain(&mut walk).is_empty(), "an early call does nothing");
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(15)));

    walk.handle_timeout(t0 + secs(15));
    assert_eq!(drain(&mut walk), [play("invalid-key"), play("main-menu")]);
    assert_eq!(walk.poll_timeout(), None);
    walk.handle_timeout(t0 + secs(100));
    assert!(drain(&mut walk).is_empty(), "no timer while prompts play");

    walk.on_prompt_finished(t0 + secs(17));
    walk.on_prompt_finished(t0 + secs(23));
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(28)));
    walk.handle_timeout(t0 + secs(28));
    assert_eq!(drain(&mut walk), [play("invalid-key"), play("main-menu")]);
    walk.on_prompt_finished(t0 + secs(30));
    walk.on_prompt_finished(t0 + secs(36));
    // A late wake-up still counts.
    walk.handle_timeout(t0 + secs(50));
    assert_eq!(
        drain(&mut walk),
        [done_group("operator", Some("main-ringback"))]
    );
}

#[test]
fn a_valid_key_does_not_reset_the_retry_count() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('7', t0 + secs(11)); // failure 1
    walk.on_digit('9', t0 + secs(12)); // repeat: same visit
    walk.on_digit('7', t0 + secs(13)); // failure 2
    walk.on_digit('7', t0 + secs(14)); // failure 3: default
    let actions = drain(&mut walk);
    assert_eq!(
        actions.last(),
        Some(&done_group("operator", Some("main-ringback")))
    );
    assert_eq!(walk.path(), "9");
}

#[test]
fn a_new_visit_starts_with_a_clean_count() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('7', t0 + secs(11)); // main failure 1
    walk.on_digit('7', t0 + secs(12)); // main failure 2
    walk.on_digit('1', t0 + secs(13)); // sales
    walk.on_digit('0', t0 + secs(14)); // back to main: a new visit
    walk.on_digit('7', t0 + secs(15)); // main failure 1 again
    walk.on_digit('7', t0 + secs(16)); // main failure 2
    assert!(!walk.is_done());
    walk.on_digit('7', t0 + secs(17));
    assert!(walk.is_done());
}

#[test]
fn a_silent_caller_in_a_sub_menu_falls_back_to_the_parent_then_its_default() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('1', t0 + secs(11));
    assert_eq!(drain(&mut walk), [play("sales-menu")]);
    walk.on_prompt_finished(t0 + secs(15));
    walk.handle_timeout(t0 + secs(19));
    // sales has no invalid prompt: just the menu again.
    assert_eq!(drain(&mut walk), [play("sales-menu")]);
    walk.on_prompt_finished(t0 + secs(25));
    walk.handle_timeout(t0 + secs(29));
    // Second failure in sales (max_retries 2): its default, Previous.
    assert_eq!(drain(&mut walk), [play("main-menu")]);
    assert_eq!(walk.current_menu(), "main");
    let mut now = t0 + secs(29);
    for _ in 0..3 {
        now += secs(6);
        walk.on_prompt_finished(now);
        let deadline = walk.poll_timeout().unwrap();
        walk.handle_timeout(deadline);
        now = deadline;
        while walk.poll_action().is_some() {}
        // The invalid prompt and the menu replay; finish the invalid prompt too.
        if !walk.is_done() {
            walk.on_prompt_finished(now);
        }
    }
    assert_eq!(
        walk.outcome(),
        Some(&Outcome::Group {
            group: "operator".to_owned(),
            ringback: Some("main-ringback".into())
        })
    );
    assert_eq!(walk.path(), "1");
}

#[test]
fn a_key_during_the_welcome_is_a_choice_in_the_root_menu() {
    let t0 = Instant::now();
    let mut walk = MenuWalk::start(switchboard(), t0);
    drain(&mut walk);
    walk.on_digit('1', t0 + secs(1));
    assert_eq!(
        drain(&mut walk),
        [IvrAction::StopPlayback, play("sales-menu")]
    );
    // The stopped welcome and main prompts are not reported; the sales prompt is.
    walk.on_prompt_finished(t0 + secs(5));
    assert_eq!(walk.poll_timeout(), Some(t0 + secs(9)));
    assert_eq!(walk.path(), "1");
}

#[test]
fn a_key_during_the_menu_prompt_interrupts_it() {
    let t0 = Instant::now();
    let mut walk = MenuWalk::start(switchboard(), t0);
    drain(&mut walk);
    walk.on_prompt_finished(t0 + secs(4));
    walk.on_digit('2', t0 + secs(5));
    assert_eq!(
        drain(&mut walk),
        [
            IvrAction::StopPlayback,
            done_group("service", Some("main-ringback"))
        ]
    );
}

#[test]
fn stray_prompt_finished_reports_are_ignored() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_prompt_finished(t0 + secs(12));
    assert_eq!(
        walk.poll_timeout(),
        Some(t0 + secs(15)),
        "the timer is not restarted"
    );
    assert!(drain(&mut walk).is_empty());
}

#[test]
fn extension_dialled_with_the_terminator() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('0', t0 + secs(11));
    assert_eq!(drain(&mut walk), [play("dial-extension")]);
    assert!(walk.is_dialling_extension());
    walk.on_prompt_finished(t0 + secs(13));
    assert_eq!(
        walk.poll_timeout(),
        Some(t0 + secs(18)),
        "first digit: the node's 5 s"
    );
    walk.on_digit('8', t0 + secs(14));
    assert_eq!(
        walk.poll_timeout(),
        Some(t0 + secs(17)),
        "then 3 s between digits"
    );
    walk.on_digit('0', t0 + secs(15));
    walk.on_digit('1', t0 + secs(16));
    assert!(drain(&mut walk).is_empty());
    walk.on_digit('#', t0 + secs(17));
    assert_eq!(
        drain(&mut walk),
        [done_extension("801", Some("main-ringback"))]
    );
    assert_eq!(walk.path(), "0>801");
}

#[test]
fn extension_ends_at_max_digits_without_the_terminator() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('0', t0 + secs(11));
    walk.on_prompt_finished(t0 + secs(13));
    for (offset, digit) in "8001".chars().enumerate() {
        walk.on_digit(digit, t0 + secs(14 + offset as u64));
    }
    assert_eq!(
        drain(&mut walk),
        [
            play("dial-extension"),
            done_extension("8001", Some("main-ringback"))
        ]
    );
    assert_eq!(walk.path(), "0>8001");
    walk.on_digit('#', t0 + secs(20));
    assert!(
        drain(&mut walk).is_empty(),
        "the terminator after Done is ignored"
    );
}

#[test]
fn extension_ends_at_the_inter_digit_timeout_with_digits_in() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('0', t0 + secs(11));
    walk.on_prompt_finished(t0 + secs(13));
    walk.on_digit('6', t0 + secs(14));
    walk.on_digit('6', t0 + secs(15));
    walk.handle_timeout(t0 + secs(17));
    assert_eq!(walk.outcome(), None, "too early");
    walk.handle_timeout(t0 + secs(18));
    assert_eq!(
        walk.outcome(),
        Some(&Outcome::Extension {
            number: "66".to_owned(),
            ringback: Some("main-ringback".into())
        })
    );
    assert_eq!(walk.finished_at(), Some(t0 + secs(18)));
}

#[test]
fn digits_may_barge_into_the_extension_prompt() {
    let t0 = Instant::now();
    let mut walk = MenuWalk::start(switchboard(), t0);
    drain(&mut walk);
    for (offset, digit) in "08001".chars().enumerate() {
        walk.on_digit(digit, t0 + secs(1 + offset as u64));
    }
    assert_eq!(
        drain(&mut walk),
        [
            IvrAction::StopPlayback,
            play("dial-extension"),
            IvrAction::StopPlayback,
            done_extension("8001", Some("main-ringback"))
        ]
    );
    assert_eq!(walk.path(), "0>8001");
}

#[test]
fn no_digit_before_the_timeout_is_a_failure_that_replays_the_extension_prompt() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('0', t0 + secs(11));
    walk.on_prompt_finished(t0 + secs(13));
    walk.handle_timeout(t0 + secs(18));
    assert_eq!(
        drain(&mut walk),
        [
            play("dial-extension"),
            play("invalid-key"),
            play("dial-extension")
        ]
    );
    assert!(walk.is_dialling_extension());
    walk.on_prompt_finished(t0 + secs(20));
    walk.on_prompt_finished(t0 + secs(22));
    walk.on_digit('8', t0 + secs(23));
    walk.on_digit('#', t0 + secs(24));
    assert_eq!(
        drain(&mut walk),
        [done_extension("8", Some("main-ringback"))]
    );
    assert_eq!(walk.path(), "0>8");
}

#[test]
fn failures_while_dialling_run_out_into_the_node_default() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('7', t0 + secs(11)); // main failure 1, in the menu
    walk.on_digit('0', t0 + secs(12)); // dialling, same visit
    walk.on_digit('#', t0 + secs(13)); // terminator with no digits: failure 2
    assert!(walk.is_dialling_extension());
    walk.on_digit('B', t0 + secs(14)); // not a digit: failure 3, the default
    assert_eq!(
        walk.outcome(),
        Some(&Outcome::Group {
            group: "operator".to_owned(),
            ringback: Some("main-ringback".into())
        })
    );
    assert_eq!(walk.path(), "0");
}

#[test]
fn a_failure_while_dialling_throws_away_the_digits_so_far() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('0', t0 + secs(11));
    walk.on_digit('1', t0 + secs(12));
    walk.on_digit('C', t0 + secs(13));
    walk.on_digit('2', t0 + secs(14));
    walk.on_digit('#', t0 + secs(15));
    assert_eq!(
        walk.outcome(),
        Some(&Outcome::Extension {
            number: "2".to_owned(),
            ringback: Some("main-ringback".into())
        })
    );
}

#[test]
fn star_while_dialling_starts_the_number_again() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('0', t0 + secs(11));
    walk.on_prompt_finished(t0 + secs(13));
    walk.on_digit('8', t0 + secs(14));
    walk.on_digit('1', t0 + secs(15));
    walk.on_digit('*', t0 + secs(16));
    assert_eq!(
        walk.poll_timeout(),
        Some(t0 + secs(21)),
        "waiting for a first digit again"
    );
    assert_eq!(
        drain(&mut walk),
        [play("dial-extension")],
        "no invalid prompt"
    );
    // Three more digits fit: the cleared ones do not count towards max_digits.
    walk.on_digit('8', t0 + secs(17));
    walk.on_digit('0', t0 + secs(18));
    walk.on_digit('0', t0 + secs(19));
    assert!(!walk.is_done());
    walk.on_digit('2', t0 + secs(20));
    assert_eq!(
        drain(&mut walk),
        [done_extension("8002", Some("main-ringback"))]
    );
    assert_eq!(walk.path(), "0>8002");
    // A clear then a silent caller: a failure, not an empty extension.
    let mut walk = waiting_in_main(t0);
    walk.on_digit('0', t0 + secs(11));
    walk.on_digit('5', t0 + secs(12));
    walk.on_digit('*', t0 + secs(13));
    walk.handle_timeout(t0 + secs(18));
    assert!(!walk.is_done());
    assert_eq!(
        drain(&mut walk),
        [
            play("dial-extension"),
            IvrAction::StopPlayback,
            play("invalid-key"),
            play("dial-extension")
        ]
    );
}

#[test]
fn star_can_be_the_terminator() {
    let t0 = Instant::now();
    let dialling = ExtensionDialling {
        terminator: '*',
        ..ExtensionDialling::new("dial", 6)
    };
    let tree = MenuTree::new(
        None,
        "main",
        vec![
            MenuNode::new("main", "m", MenuAction::Hangup)
                .with_option('#', MenuAction::Extension(dialling))
                .with_invalid_prompt("bad"),
        ],
    );
    let mut walk = MenuWalk::start(Arc::new(tree.unwrap()), t0);
    walk.on_digit('#', t0);
    walk.on_digit('1', t0);
    walk.on_digit('#', t0); // not the terminator, not a digit: invalid, digits cleared
    walk.on_digit('2', t0);
    walk.on_digit('3', t0);
    walk.on_digit('*', t0);
    assert_eq!(
        drain(&mut walk),
        [
            play("m"),
            IvrAction::StopPlayback,
            play("dial"),
            IvrAction::StopPlayback,
            play("bad"),
            play("dial"),
            IvrAction::StopPlayback,
            done_extension("23", None)
        ]
    );
    assert_eq!(walk.path(), "#>23");
}

#[test]
fn keys_timeouts_and_prompt_ends_after_done_are_ignored() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('2', t0 + secs(11));
    let outcome = walk.outcome().cloned();
    drain(&mut walk);
    for (offset, digit) in "0123456789*#".chars().enumerate() {
        walk.on_digit(digit, t0 + secs(12 + offset as u64));
    }
    walk.on_prompt_finished(t0 + secs(30));
    walk.handle_timeout(t0 + secs(1000));
    assert!(drain(&mut walk).is_empty());
    assert_eq!(walk.outcome().cloned(), outcome);
    assert_eq!(walk.path(), "2");
    assert_eq!(walk.poll_timeout(), None);
    assert_eq!(walk.finished_at(), Some(t0 + secs(11)));
}

#[test]
fn the_hangup_key_ends_with_hangup() {
    let t0 = Instant::now();
    let mut walk = waiting_in_main(t0);
    walk.on_digit('*', t0 + secs(11));
    assert_eq!(drain(&mut walk), [IvrAction::Done(Outcome::Hangup)]);
    assert_eq!(walk.path(), "*");
}

#[test]
fn a_node_without_keys_announces_then_takes_its_default() {
    let t0 = Instant::now();
    let tree = MenuTree::new(
        Some("closed-today".into()),
        "announce",
        vec![
            MenuNode::new("announce", "transferring", group("duty"))
                .with_max_retries(1)
                .with_timeout(Duration::from_millis(1)),
        ],
    );
    let mut walk = MenuWalk::start(Arc::new(tree.unwrap()), t0);
    walk.on_prompt_finished(t0 + secs(3));
    walk.on_prompt_finished(t0 + secs(5));
    walk.handle_timeout(walk.poll_timeout().unwrap());
    assert_eq!(
        drain(&mut walk),
        [
            play("closed-today"),
            play("transferring"),
            done_group("duty", None)
        ]
    );
}

#[test]
fn a_default_menu_moves_the_silent_caller_on() {
    let t0 = Instant::now();
    let tree = MenuTree::new(
        None,
        "main",
        vec![
            MenuNode::new("main", "m", menu("last-chance")).with_max_retries(1),
            MenuNode::new("last-chance", "l", MenuAction::Hangup)
                .with_option('1', group("g"))
                .with_max_retries(1),
        ],
    );
    let mut walk = MenuWalk::start(Arc::new(tree.unwrap()), t0);
    walk.on_prompt_finished(t0);
    walk.handle_timeout(t0 + secs(5));
    assert_eq!(walk.current_menu(), "last-chance");
    walk.on_digit('1', t0 + secs(6));
    assert_eq!(
        drain(&mut walk),
        [
            play("m"),
            play("l"),
            IvrAction::StopPlayback,
            done_group("g", None)
        ]
    );
    assert_eq!(walk.path(), "1");
}
