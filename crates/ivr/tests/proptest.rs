//! Random menus and random callers. Whatever the tree (any that `MenuTree::new`
//! accepts) and whatever the events (keys of any kind, timeouts early or late, prompt
//! reports stray or not), nothing panics, the actions stay consistent with what is
//! playing, a key timer runs whenever nothing plays, stray prompt reports change
//! nothing, the path stays readable, and a caller who then stops pressing keys is
//! routed or hung up on within `nodes * max_retries + 1` timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use sihai_ivr::{ExtensionDialling, IvrAction, MenuAction, MenuNode, MenuTree, MenuWalk};

/// The most retries a generated node allows.
const MAX_RETRIES_DRAWN: u32 = 4;

const KEYS: &[char] = &[
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'x',
];

fn name(index: usize) -> String {
    format!("n{index}")
}

fn action_strategy(node_count: usize) -> impl Strategy<Value = MenuAction> {
    prop_oneof![
        2 => (0..3usize).prop_map(|group| MenuAction::Group(format!("g{group}"))),
        3 => (0..node_count).prop_map(|target| MenuAction::Menu(name(target))),
        2 => (1u8..6, 1u64..8_000, prop::bool::ANY).prop_map(|(max_digits, inter_ms, hash)| {
            MenuAction::Extension(ExtensionDialling {
                inter_digit_timeout: Duration::from_millis(inter_ms),
                terminator: if hash { '#' } else { '*' },
                ..ExtensionDialling::new("dial", max_digits)
            })
        }),
        1 => Just(MenuAction::Repeat),
        1 => Just(MenuAction::Previous),
        1 => Just(MenuAction::Hangup),
    ]
}

fn default_strategy(node_count: usize) -> impl Strategy<Value = MenuAction> {
    prop_oneof![
        2 => (0..3usize).prop_map(|group| MenuAction::Group(format!("g{group}"))),
        2 => (0..node_count).prop_map(|target| MenuAction::Menu(name(target))),
        2 => Just(MenuAction::Previous),
        1 => Just(MenuAction::Hangup),
    ]
}

fn node_strategy(index: usize, node_count: usize) -> impl Strategy<Value = MenuNode> {
    (
        prop::collection::btree_map(
            prop::sample::select(&KEYS[..12]),
            action_strategy(node_count),
            0..6,
        ),
        default_strategy(node_count),
        1u32..=MAX_RETRIES_DRAWN,
        1u64..10_000,
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(
            move |(options, default, retries, timeout_ms, invalid, ringback)| {
                let mut node = MenuNode::new(name(index), format!("p{index}").as_str(), default)
                    .with_max_retries(retries)
                    .with_timeout(Duration::from_millis(timeout_ms));
                node.options = options.into_iter().collect();
                if invalid {
                    node = node.with_invalid_prompt("invalid");
                }
                if ringback {
                    node = node.with_ringback("ringback");
                }
                node
            },
        )
}

/// Trees that `MenuTree::new` accepts (random defaults often loop; those are redrawn).
fn tree_strategy() -> impl Strategy<Value = Arc<MenuTree>> {
    (1usize..5)
        .prop_flat_map(|node_count| {
            let nodes: Vec<_> = (0..node_count)
                .map(|index| node_strategy(index, node_count))
                .collect();
            (nodes, 0..node_count, prop::bool::ANY)
        })
        .prop_filter_map("defaults loop", |(nodes, root, welcome)| {
            let welcome = welcome.then(|| "welcome".into());
            MenuTree::new(welcome, &name(root), nodes)
                .ok()
                .map(Arc::new)
        })
}

#[derive(Debug, Clone)]
enum Event {
    Key(char),
    PromptFinished,
    /// Fire the timer this long after (positive) or before (negative) its deadline, or
    /// at an arbitrary clock reading when none is set.
    Timeout(i64),
    /// Let this many milliseconds pass.
    Wait(u64),
}

fn event_strategy() -> impl Strategy<Value = Event> {
    prop_oneof![
        5 => prop::sample::select(KEYS).prop_map(Event::Key),
        4 => Just(Event::PromptFinished),
        3 => (-2_000i64..2_000).prop_map(Event::Timeout),
        1 => (0u64..10_000).prop_map(Event::Wait),
    ]
}

/// The daemon's side: what it has been asked to play, and what the walk said.
struct Player {
    playing: usize,
    done: usize,
}

impl Player {
    fn apply(&mut self, walk: &mut MenuWalk) -> Result<(), TestCaseError> {
        while let Some(action) = walk.poll_action() {
            prop_assert_eq!(self.done, 0, "an action after Done: {:?}", action);
            match action {
                IvrAction::Play(_) => self.playing += 1,
                IvrAction::StopPlayback => {
                    prop_assert!(self.playing > 0, "StopPlayback with nothing playing");
                    self.playing = 0;
                }
                IvrAction::Done(outcome) => {
                    prop_assert_eq!(Some(&outcome), walk.outcome());
                    self.done += 1;
                }
            }
        }
        Ok(())
    }
}

fn check_path(path: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        path.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '>')),
        "path {:?}",
        path
    );
    if !path.is_empty() {
        prop_assert!(
            path.split('>').all(|segment| !segment.is_empty()),
            "empty segment in path {:?}",
            path
        );
    }
    Ok(())
}

/// Applies the events. Prompt ends are reported only while something plays (as the
/// daemon's contract asks) unless `send_stray_reports`, when the rest are sent too and
/// must change nothing.
fn run_events(
    walk: &mut MenuWalk,
    player: &mut Player,
    events: &[Event],
    mut now: Instant,
    send_stray_reports: bool,
) -> Result<Instant, TestCaseError> {
    for event in events {
        match *event {
            Event::Key(key) => walk.on_digit(key, now),
            Event::PromptFinished if player.playing > 0 => {
                walk.on_prompt_finished(now);
                player.playing -= 1;
            }
            Event::PromptFinished if send_stray_reports => {
                let timer = walk.poll_timeout();
                walk.on_prompt_finished(now);
                prop_assert_eq!(
                    walk.poll_timeout(),
                    timer,
                    "a stray prompt end moved the timer"
                );
            }
            Event::PromptFinished => {}
            Event::Timeout(offset_ms) => {
                let at = match walk.poll_timeout() {
                    Some(deadline) if offset_ms >= 0 => {
                        deadline + Duration::from_millis(offset_ms.unsigned_abs())
                    }
                    Some(deadline) => deadline
                        .checked_sub(Duration::from_millis(offset_ms.unsigned_abs()))
                        .unwrap_or(deadline)
                        .max(now),
                    None => now + Duration::from_millis(offset_ms.unsigned_abs()),
                };
                walk.handle_timeout(at);
                now = now.max(at);
            }
            Event::Wait(ms) => now += Duration::from_millis(ms),
        }
        player.apply(walk)?;
        check_path(walk.path())?;
        prop_assert_eq!(walk.is_done(), walk.outcome().is_some());
        prop_assert_eq!(player.done, usize::from(walk.is_done()));
        // The timer runs exactly when nothing plays and the walk is undecided, so the
        // walk can never be left stuck.
        prop_assert_eq!(
            walk.poll_timeout().is_some(),
            player.playing == 0 && !walk.is_done(),
            "timer {:?} with {} prompts playing",
            walk.poll_timeout(),
            player.playing
        );
    }
    Ok(now)
}

/// The caller goes silent: prompts play out and timers fire until the walk decides.
fn run_silent_caller(
    walk: &mut MenuWalk,
    player: &mut Player,
    mut now: Instant,
    node_count: usize,
) -> Result<(), TestCaseError> {
    let bound = node_count * MAX_RETRIES_DRAWN as usize + 1;
    let mut timeouts = 0;
    let mut prompt_ends = 0;
    while !walk.is_done() {
        if player.playing > 0 {
            now += Duration::from_millis(1_500);
            walk.on_prompt_finished(now);
            player.playing -= 1;
            prompt_ends += 1;
            prop_assert!(prompt_ends <= 3 * (bound + 1), "prompts never end");
        } else {
            let deadline = walk.poll_timeout();
            prop_assert!(deadline.is_some(), "stuck: nothing plays and no timer");
            let Some(deadline) = deadline else {
                break;
            };
            walk.handle_timeout(deadline);
            now = deadline;
            timeouts += 1;
            prop_assert!(
                timeouts <= bound,
                "{} timeouts and still not done",
                timeouts
            );
        }
        player.apply(walk)?;
    }
    prop_assert_eq!(player.done, 1);
    check_path(walk.path())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn well_behaved_daemon_any_caller_then_silence_always_ends(
        tree in tree_strategy(),
        events in prop::collection::vec(event_strategy(), 0..60),
    ) {
        let node_count = tree.nodes().len();
        let t0 = Instant::now();
        let mut walk = MenuWalk::start(Arc::clone(&tree), t0);
        let mut player = Player { playing: 0, done: 0 };
        player.apply(&mut walk)?;
        let now = run_events(&mut walk, &mut player, &events, t0, false)?;
        run_silent_caller(&mut walk, &mut player, now, node_count)?;
        // Once done, nothing moves it.
        let outcome = walk.outcome().cloned();
        let path = walk.path().to_owned();
        run_events(&mut walk, &mut player, &events, now, true)?;
        prop_assert_eq!(walk.outcome().cloned(), outcome);
        prop_assert_eq!(walk.path(), path);
    }

    #[test]
    fn stray_reports_never_panic_and_the_walk_still_ends(
        tree in tree_strategy(),
        events in prop::collection::vec(event_strategy(), 0..80),
    ) {
        let node_count = tree.nodes().len();
        let t0 = Instant::now();
        let mut walk = MenuWalk::start(tree, t0);
        let mut player = Player { playing: 0, done: 0 };
        player.apply(&mut walk)?;
        let now = run_events(&mut walk, &mut player, &events, t0, true)?;
        run_silent_caller(&mut walk, &mut player, now, node_count)?;
    }

    #[test]
    fn tree_validation_never_panics(
        nodes in prop::collection::vec(
            (
                "[a-c]{0,2}",
                prop::collection::vec((any::<char>(), action_names()), 0..5),
                action_names(),
                0u32..12,
                0u64..400_000,
                0u8..40,
            ),
            0..5,
        ),
        root in "[a-c]{0,2}",
    ) {
        let nodes: Vec<MenuNode> = nodes
            .into_iter()
            .map(|(name, options, default, retries, timeout_ms, max_digits)| {
                let mut node = MenuNode::new(name, "p", default)
                    .with_max_retries(retries)
                    .with_timeout(Duration::from_millis(timeout_ms));
                node.options = options
                    .into_iter()
                    .map(|(key, action)| match action {
                        MenuAction::Extension(dialling) => {
                            (key, MenuAction::Extension(ExtensionDialling { max_digits, ..dialling }))
                        }
                        other => (key, other),
                    })
                    .collect();
                node
            })
            .collect();
        let result = MenuTree::new(None, &root, nodes);
        if let Err(error) = &result {
            prop_assert!(!error.to_string().is_empty());
        }
    }
}

/// Actions whose menu targets and groups are short random names, often dangling.
fn action_names() -> impl Strategy<Value = MenuAction> {
    prop_oneof![
        "[a-c]{0,2}".prop_map(MenuAction::Group),
        "[a-c]{0,2}".prop_map(MenuAction::Menu),
        (any::<char>(), 0u64..400_000).prop_map(|(terminator, inter_ms)| {
            MenuAction::Extension(ExtensionDialling {
                terminator,
                inter_digit_timeout: Duration::from_millis(inter_ms),
                ..ExtensionDialling::new("dial", 4)
            })
        }),
        Just(MenuAction::Repeat),
        Just(MenuAction::Previous),
        Just(MenuAction::Hangup),
    ]
}
