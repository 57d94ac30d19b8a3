//! One call's walk through a [`MenuTree`]: the state machine that turns "prompt
//! finished", "key pressed" and "time passed" into "play this", "stop playing" and
//! finally "route the call here". It owns no clock, socket or audio, so the call state
//! machine can drive it from its own event loop and tests can drive it in microseconds.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::tree::{DefaultStep, ExtensionDialling, MenuTree, NodeIndex, PromptName, Step};

/// What the walker asks the call state machine to do, drained with
/// [`MenuWalk::poll_action`] in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrAction {
    /// Queue this prompt after any already playing or queued; report each one's end
    /// with [`MenuWalk::on_prompt_finished`].
    Play(PromptName),
    /// Stop the prompt playing now and drop every queued one; none of them is reported
    /// as finished any more.
    StopPlayback,
    /// The menu has decided; nothing follows.
    Done(Outcome),
}

/// Where the menu sends the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ring this hunt group, playing `ringback` (the ringback of the node where the
    /// group was chosen) to the caller meanwhile.
    Group {
        group: String,
        ringback: Option<PromptName>,
    },
    /// Ring the phones bound to this extension (digits only, terminator removed).
    Extension {
        number: String,
        ringback: Option<PromptName>,
    },
    /// Hang up on the caller.
    Hangup,
}

/// Where in a node the walk is.
#[derive(Debug, Clone)]
enum Stage {
    /// Playing the node's menu prompt or waiting for a key.
    Menu,
    /// Collecting an extension number after the key that asked for it.
    Extension {
        dialling: ExtensionDialling,
        digits: String,
    },
    /// Decided; every further input is ignored.
    Done(Outcome),
}

/// One call's walk through a voice menu.
///
/// # Contract with the call state machine
///
/// - Carry out [`IvrAction`]s in order. Prompts from consecutive `Play`s play one after
///   another; call [`on_prompt_finished`](MenuWalk::on_prompt_finished) once for each,
///   in order. After a `StopPlayback`, report nothing for the prompts it stopped. A
///   stray `on_prompt_finished` while nothing is asked to play is ignored.
/// - Call [`handle_timeout`](MenuWalk::handle_timeout) at (or after)
///   [`poll_timeout`](MenuWalk::poll_timeout). An early call does nothing. The timer
///   runs only while nothing plays: the wait for a key starts when the last prompt asked
///   for (the menu or extension prompt, which always comes last) has played out, so a
///   long welcome or invalid-key prompt never eats into it.
/// - Pass every DTMF key to [`on_digit`](MenuWalk::on_digit). A key while a prompt plays
///   interrupts it (barge-in): `StopPlayback` comes first, then whatever the key does.
///   This holds for the welcome prompt too: a key there is a choice in the root menu.
///
/// # Retries
///
/// An invalid key (one the node does not bind, or anything but `0`-`9`, `*`, `#`) and a
/// timeout with no key are both *failures*. A failure plays the node's invalid prompt
/// (if any) and then the menu prompt again; the node's `max_retries`-th failure takes
/// the node's default instead. Failures are counted per *visit* of a node: entering a
/// node (by a `Menu` key, by a default, or by `Previous`) starts a visit at zero, while
/// `Repeat`, extension dialling and valid keys in general keep the count, so pressing
/// `Repeat` cannot buy a silent caller more time.
///
/// # Extension dialling
///
/// After the key that chose it, the extension prompt plays (digits may barge in). The
/// first digit is awaited for the node's `timeout`, later ones for the
/// `inter_digit_timeout`. Dialling ends with the terminator, with `max_digits` digits,
/// or when the inter-digit timeout passes after at least one digit. `*` (when it is not
/// the terminator) clears the digits so far and waits for a first digit again; it is not
/// a failure. A failure here (no digit in time, the terminator with no digits, or any
/// other key) counts towards the node's retries as above, and replays the extension
/// prompt rather than the menu prompt, digits cleared: the caller already chose to dial.
///
/// # Previous and the trail of menus
///
/// The walker keeps the trail of menus from the root to the current node. `Previous`
/// goes one step back along it (at the root it repeats the root). Entering a node that
/// is already on the trail (a "back to main menu" key) cuts the trail back to it rather
/// than growing it, so the trail holds each node at most once.
///
/// # Path
///
/// [`path`](MenuWalk::path) records, for a call detail record, every key that chose
/// something, joined by `>`: menu keys including `Repeat` and `Previous` keys, and a
/// dialled extension as one segment of its digits. For example `1>3` (sales, then its
/// option 3), `1>0>2` (sub-menu, back, option 2), `0>8001` (extension 8001). Invalid
/// keys, timeouts, `*` clears, the terminator and defaults leave no mark, so a path
/// contains only `0`-`9`, `*`, `#` and `>`; the [`Outcome`] says where the call went.
#[derive(Debug, Clone)]
pub struct MenuWalk {
    tree: Arc<MenuTree>,
    /// Menus from the root (first) to the current node (last); never empty, each node
    /// at most once.
    trail: Vec<NodeIndex>,
    /// Failures in the current visit of the current node.
    failures: u32,
    stage: Stage,
    /// Prompts asked for whose end has not been reported yet.
    prompts_playing: usize,
    key_deadline: Option<Instant>,
    actions: VecDeque<IvrAction>,
    path: String,
    started_at: Instant,
    finished_at: Option<Instant>,
}

impl MenuWalk {
    /// Starts a call's walk at the root: queues `Play(welcome)` (if the tree has one)
    /// and `Play(root prompt)`.
    pub fn start(tree: Arc<MenuTree>, now: Instant) -> MenuWalk {
        let root = tree.root_index();
        let welcome = tree.welcome().cloned();
        let root_prompt = tree.node_at(root).prompt.clone();
        let mut walk = MenuWalk {
            tree,
            trail: vec![root],
            failures: 0,
            stage: Stage::Menu,
            prompts_playing: 0,
            key_deadline: None,
            actions: VecDeque::new(),
            path: String::new(),
            started_at: now,
            finished_at: None,
        };
        if let Some(welcome) = welcome {
            walk.play(welcome);
        }
        walk.play(root_prompt);
        walk
    }

    /// The oldest prompt asked for (and not stopped) has played out. When it was the
    /// last one, the wait for a key starts now.
    pub fn on_prompt_finished(&mut self, now: Instant) {
        if self.is_done() || self.prompts_playing == 0 {
            return;
        }
        self.prompts_playing -= 1;
        if self.prompts_playing == 0 {
            self.key_deadline = Some(now + self.first_key_wait());
        }
    }

    /// A DTMF key from the caller. Interrupts any prompt, then acts on the key in the
    /// current menu or extension dialling. Ignored once the walk is done.
    pub fn on_digit(&mut self, digit: char, now: Instant) {
        if self.is_done() {
            return;
        }
        self.stop_playback();
        self.key_deadline = None;
        match &self.stage {
            Stage::Menu => self.on_menu_key(digit, now),
            Stage::Extension { .. } => self.on_extension_key(digit, now),
            Stage::Done(_) => {}
        }
    }

    /// Time has passed: if the wait for a key has run out, that is a failure, or in
    /// extension dialling with digits in, the end of the number.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.key_deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        self.key_deadline = None;
        match &self.stage {
            Stage::Extension { digits, .. } if !digits.is_empty() => {
                let number = digits.clone();
                self.finish_extension(number, now);
            }
            Stage::Menu | Stage::Extension { .. } => self.on_failure(now),
            Stage::Done(_) => {}
        }
    }

    /// When [`handle_timeout`](MenuWalk::handle_timeout) should next be called; `None`
    /// while a prompt plays or once the walk is done.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.key_deadline
    }

    /// The next thing to do, oldest first.
    pub fn poll_action(&mut self) -> Option<IvrAction> {
        self.actions.pop_front()
    }

    /// The keys that chose something, joined by `>` (see [`MenuWalk`]'s "Path").
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Where the call goes, once decided.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.stage {
            Stage::Done(outcome) => Some(outcome),
            Stage::Menu | Stage::Extension { .. } => None,
        }
    }

    /// Whether the menu has decided.
    pub fn is_done(&self) -> bool {
        matches!(self.stage, Stage::Done(_))
    }

    /// The name of the menu node the caller is in (or decided in).
    pub fn current_menu(&self) -> &str {
        &self.tree.node_at(self.current()).name
    }

    /// Whether the caller is dialling an extension number.
    pub fn is_dialling_extension(&self) -> bool {
        matches!(self.stage, Stage::Extension { .. })
    }

    /// The `now` the walk started at.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// The `now` of the input that decided the walk.
    pub fn finished_at(&self) -> Option<Instant> {
        self.finished_at
    }

    fn current(&self) -> NodeIndex {
        // The trail starts with the root and is only ever popped down to one entry.
        self.trail.last().copied().unwrap_or(self.tree.root_index())
    }

    fn first_key_wait(&self) -> std::time::Duration {
        match &self.stage {
            Stage::Extension { dialling, digits } if !digits.is_empty() => {
                dialling.inter_digit_timeout
            }
            _ => self.tree.node_at(self.current()).timeout,
        }
    }

    fn play(&mut self, prompt: PromptName) {
        self.actions.push_back(IvrAction::Play(prompt));
        self.prompts_playing += 1;
        self.key_deadline = None;
    }

    fn stop_playback(&mut self) {
        if self.prompts_playing > 0 {
            self.actions.push_back(IvrAction::StopPlayback);
            self.prompts_playing = 0;
        }
    }

    fn on_menu_key(&mut self, key: char, now: Instant) {
        let tree = Arc::clone(&self.tree);
        let chosen = tree
            .steps_at(self.current())
            .options
            .iter()
            .find(|(bound, _)| *bound == key)
            .map(|(_, step)| step);
        let Some(step) = chosen else {
            self.on_failure(now);
            return;
        };
        self.mark_path(&key.to_string());
        match step {
            Step::Group(group) => self.finish_group(group.clone(), now),
            Step::Menu(target) => self.enter(*target),
            Step::Extension(dialling) => {
                let prompt = dialling.prompt.clone();
                self.stage = Stage::Extension {
                    dialling: dialling.clone(),
                    digits: String::new(),
                };
                self.play(prompt);
            }
            Step::Repeat => self.replay_menu(),
            Step::Previous => self.go_back(),
            Step::Hangup => self.finish(Outcome::Hangup, now),
        }
    }

    fn on_extension_key(&mut self, key: char, now: Instant) {
        let Stage::Extension { dialling, digits } = &mut self.stage else {
            return;
        };
        if key == dialling.terminator {
            if digits.is_empty() {
                self.on_failure(now);
            } else {
                let number = std::mem::take(digits);
                self.finish_extension(number, now);
            }
        } else if key.is_ascii_digit() {
            digits.push(key);
            if digits.len() >= usize::from(dialling.max_digits) {
                let number = std::mem::take(digits);
                self.finish_extension(number, now);
            } else {
                self.key_deadline = Some(now + dialling.inter_digit_timeout);
            }
        } else if key == '*' {
            digits.clear();
            self.key_deadline = Some(now + self.first_key_wait());
        } else {
            self.on_failure(now);
        }
    }

    /// An invalid key or a timeout: try again, or take the default when retries run out.
    fn on_failure(&mut self, now: Instant) {
        self.failures += 1;
        let tree = Arc::clone(&self.tree);
        let current = self.current();
        let node = tree.node_at(current);
        if self.failures >= node.max_retries {
            self.take_default(now);
            return;
        }
        if let Some(invalid_prompt) = &node.invalid_prompt {
            self.play(invalid_prompt.clone());
        }
        match &mut self.stage {
            Stage::Extension { dialling, digits } => {
                digits.clear();
                let prompt = dialling.prompt.clone();
                self.play(prompt);
            }
            Stage::Menu | Stage::Done(_) => self.play(node.prompt.clone()),
        }
    }

    fn take_default(&mut self, now: Instant) {
        let tree = Arc::clone(&self.tree);
        match &tree.steps_at(self.current()).default {
            DefaultStep::Group(group) => self.finish_group(group.clone(), now),
            DefaultStep::Menu(target) => self.enter(*target),
            DefaultStep::Previous => self.go_back(),
            DefaultStep::Hangup => self.finish(Outcome::Hangup, now),
        }
    }

    /// Starts a visit of `target`, cutting the trail back if it is already on it.
    fn enter(&mut self, target: NodeIndex) {
        match self.trail.iter().position(|&node| node == target) {
            Some(position) => self.trail.truncate(position + 1),
            None => self.trail.push(target),
        }
        self.begin_visit();
    }

    fn go_back(&mut self) {
        if self.trail.len() > 1 {
            self.trail.pop();
            self.begin_visit();
        } else {
            self.replay_menu();
        }
    }

    fn begin_visit(&mut self) {
        self.failures = 0;
        self.replay_menu();
    }

    fn replay_menu(&mut self) {
        self.stage = Stage::Menu;
        let prompt = self.tree.node_at(self.current()).prompt.clone();
        self.play(prompt);
    }

    fn finish_group(&mut self, group: String, now: Instant) {
        let ringback = self.tree.node_at(self.current()).ringback.clone();
        self.finish(Outcome::Group { group, ringback }, now);
    }

    fn finish_extension(&mut self, number: String, now: Instant) {
        self.mark_path(&number);
        let ringback = self.tree.node_at(self.current()).ringback.clone();
        self.finish(Outcome::Extension { number, ringback }, now);
    }

    fn finish(&mut self, outcome: Outcome, now: Instant) {
        self.stop_playback();
        self.key_deadline = None;
        self.actions.push_back(IvrAction::Done(outcome.clone()));
        self.stage = Stage::Done(outcome);
        self.finished_at = Some(now);
    }

    fn mark_path(&mut self, segment: &str) {
        if !self.path.is_empty() {
            self.path.push('>');
        }
        self.path.push_str(segment);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{MenuAction, MenuNode};

    fn menu(name: &str) -> MenuAction {
        MenuAction::Menu(name.to_owned())
    }

    /// main -1-> a -1-> b, and b's key 9 goes back to main.
    fn chain() -> Arc<MenuTree> {
        Arc::new(
            MenuTree::new(
                None,
                "main",
                vec![
                    MenuNode::new("main", "main", MenuAction::Hangup).with_option('1', menu("a")),
                    MenuNode::new("a", "a", MenuAction::Hangup).with_option('1', menu("b")),
                    MenuNode::new("b", "b", MenuAction::Hangup).with_option('9', menu("main")),
                ],
            )
            .unwrap(),
        )
    }

    #[test]
    fn entering_a_node_on_the_trail_cuts_the_trail_back() {
        let t0 = Instant::now();
        let mut walk = MenuWalk::start(chain(), t0);
        walk.on_digit('1', t0);
        walk.on_digit('1', t0);
        assert_eq!(walk.trail, [0, 1, 2]);
        walk.on_digit('9', t0);
        assert_eq!(walk.trail, [0]);
        assert_eq!(walk.current_menu(), "main");
        // Round and round: the trail never grows past the tree.
        for _ in 0..100 {
            walk.on_digit('1', t0);
            walk.on_digit('1', t0);
            walk.on_digit('9', t0);
        }
        assert_eq!(walk.trail, [0]);
        assert_eq!(walk.path().len(), 2 * 303 - 1);
    }

    #[test]
    fn entering_a_node_resets_failures_but_repeat_does_not() {
        let t0 = Instant::now();
        let tree = Arc::new(
            MenuTree::new(
                None,
                "main",
                vec![
                    MenuNode::new("main", "main", MenuAction::Hangup)
                        .with_option('1', menu("sub"))
                        .with_option('5', MenuAction::Repeat),
                    MenuNode::new("sub", "sub", MenuAction::Previous),
                ],
            )
            .unwrap(),
        );
        let mut walk = MenuWalk::start(tree, t0);
        walk.on_digit('7', t0);
        assert_eq!(walk.failures, 1);
        walk.on_digit('5', t0);
        assert_eq!(walk.failures, 1);
        walk.on_digit('1', t0);
        assert_eq!(walk.failures, 0);
        walk.on_digit('7', t0);
        assert_eq!(walk.failures, 1);
        walk.on_digit('7', t0);
        walk.on_digit('7', t0);
        // sub's third failure took its default, Previous: a new visit of main.
        assert_eq!(walk.current_menu(), "main");
        assert_eq!(walk.failures, 0);
    }

    #[test]
    fn first_key_wait_is_the_node_timeout_until_a_digit_is_in() {
        let t0 = Instant::now();
        let dialling = ExtensionDialling {
            inter_digit_timeout: Duration::from_secs(2),
            ..ExtensionDialling::new("dial", 4)
        };
        let tree = Arc::new(
            MenuTree::new(
                None,
                "main",
                vec![
                    MenuNode::new("main", "main", MenuAction::Hangup)
                        .with_timeout(Duration::from_secs(7))
                        .with_option('0', MenuAction::Extension(dialling)),
                ],
            )
            .unwrap(),
        );
        let mut walk = MenuWalk::start(tree, t0);
        walk.on_digit('0', t0);
        assert_eq!(walk.first_key_wait(), Duration::from_secs(7));
        walk.on_digit('8', t0);
        assert_eq!(walk.first_key_wait(), Duration::from_secs(2));
    }
}
