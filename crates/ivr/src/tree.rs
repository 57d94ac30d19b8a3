//! The menu tree: a number's voice menu as data, checked once when it is built so that
//! the walker never meets a dangling reference or a menu a silent caller cannot leave.
//!
//! The public [`MenuNode`] / [`MenuAction`] types are what the configuration crate
//! fills in (targets by name); [`MenuTree::new`] resolves names to indices and keeps
//! that resolved form for the walker, alongside the nodes as given for inspection.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::MenuError;

/// The name of a prompt (an audio file, a TTS text key, ...): the daemon resolves it to
/// audio; the walker only passes it along in [`IvrAction::Play`](crate::IvrAction::Play).
pub type PromptName = Arc<str>;

/// How long a node waits for a key after its prompt, unless set otherwise.
pub const DEFAULT_KEY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many invalid keys or timeouts a node takes before its default, unless set otherwise.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// How long extension dialling waits between digits, unless set otherwise.
pub const DEFAULT_INTER_DIGIT_TIMEOUT: Duration = Duration::from_secs(3);
/// The most failures a node may allow before its default; more only keeps a lost
/// caller on the line.
pub const MAX_RETRIES_LIMIT: u32 = 10;
/// The longest any wait for a key may be.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// The longest extension number that can be dialled.
pub const MAX_EXTENSION_DIGITS: u8 = 32;

/// Whether a telephone keypad can send `key` as a menu choice: `0`-`9`, `*` or `#`.
pub fn is_keypad_key(key: char) -> bool {
    matches!(key, '0'..='9' | '*' | '#')
}

/// One menu: a prompt listing the choices, the keys, and what happens when the caller
/// makes no valid choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuNode {
    /// How other nodes refer to this one, e.g. "main" or "sales".
    pub name: String,
    /// The menu prompt, e.g. "press 1 for sales, 2 for service".
    pub prompt: PromptName,
    /// What each key does. Keys not listed are invalid.
    pub options: Vec<(char, MenuAction)>,
    /// How long to wait for a key once the menu prompt has played out.
    pub timeout: Duration,
    /// On this many invalid keys or timeouts in one visit, the default is taken.
    pub max_retries: u32,
    /// Played after an invalid key or a timeout, before the menu prompt is replayed.
    pub invalid_prompt: Option<PromptName>,
    /// Taken when `max_retries` runs out. Must be able to end the walk: a group, a
    /// hang-up, another menu, or the previous menu (below the root); see
    /// [`MenuError::UnusableDefault`] and [`MenuError::DefaultLoop`].
    pub default: MenuAction,
    /// What the caller hears while a group or extension chosen in this node rings; only
    /// reported in the [`Outcome`](crate::Outcome).
    pub ringback: Option<PromptName>,
}

impl MenuNode {
    /// A node with no keys yet, the default timeout and retries, and no invalid prompt
    /// or ringback.
    pub fn new(
        name: impl Into<String>,
        prompt: impl Into<PromptName>,
        default: MenuAction,
    ) -> MenuNode {
        MenuNode {
            name: name.into(),
            prompt: prompt.into(),
            options: Vec::new(),
            timeout: DEFAULT_KEY_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            invalid_prompt: None,
            default,
            ringback: None,
        }
    }

    /// Binds `key` to `action`.
    pub fn with_option(mut self, key: char, action: MenuAction) -> MenuNode {
        self.options.push((key, action));
        self
    }

    /// Sets how long to wait for a key after the prompt.
    pub fn with_timeout(mut self, timeout: Duration) -> MenuNode {
        self.timeout = timeout;
        self
    }

    /// Sets how many failures lead to the default.
    pub fn with_max_retries(mut self, max_retries: u32) -> MenuNode {
        self.max_retries = max_retries;
        self
    }

    /// Sets the prompt played after an invalid key or a timeout.
    pub fn with_invalid_prompt(mut self, prompt: impl Into<PromptName>) -> MenuNode {
        self.invalid_prompt = Some(prompt.into());
        self
    }

    /// Sets the ringback reported when a group or extension is chosen here.
    pub fn with_ringback(mut self, prompt: impl Into<PromptName>) -> MenuNode {
        self.ringback = Some(prompt.into());
        self
    }
}

/// What a key (or a node's default) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    /// Route the call to this hunt group; the walk ends.
    Group(String),
    /// Go to this menu node (by name).
    Menu(String),
    /// Collect an extension number (总机/分机); the walk ends with it.
    Extension(ExtensionDialling),
    /// Play this menu again.
    Repeat,
    /// Go back to the menu that led here; at the root, the same as `Repeat`.
    Previous,
    /// Hang up; the walk ends.
    Hangup,
}

impl MenuAction {
    fn describe(&self) -> &'static str {
        match self {
            MenuAction::Group(_) => "a hunt group",
            MenuAction::Menu(_) => "another menu",
            MenuAction::Extension(_) => "extension dialling",
            MenuAction::Repeat => "repeat",
            MenuAction::Previous => "previous menu",
            MenuAction::Hangup => "hang-up",
        }
    }
}

/// How an extension number is collected after the key that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionDialling {
    /// Played first, e.g. "please dial the extension".
    pub prompt: PromptName,
    /// Dialling ends as soon as this many digits are in.
    pub max_digits: u8,
    /// Dialling ends this long after the last digit.
    pub inter_digit_timeout: Duration,
    /// Ends dialling at once: `#` or `*`.
    pub terminator: char,
}

impl ExtensionDialling {
    /// Extensions of up to `max_digits` digits, ended by `#` or a 3 s pause.
    pub fn new(prompt: impl Into<PromptName>, max_digits: u8) -> ExtensionDialling {
        ExtensionDialling {
            prompt: prompt.into(),
            max_digits,
            inter_digit_timeout: DEFAULT_INTER_DIGIT_TIMEOUT,
            terminator: '#',
        }
    }
}

/// A node's index in [`MenuTree`]'s node list.
pub(crate) type NodeIndex = usize;

/// A key's action with its menu target resolved.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Group(String),
    Menu(NodeIndex),
    Extension(ExtensionDialling),
    Repeat,
    Previous,
    Hangup,
}

/// A default, limited to the actions that can end the walk.
#[derive(Debug, Clone)]
pub(crate) enum DefaultStep {
    Group(String),
    Menu(NodeIndex),
    Previous,
    Hangup,
}

/// A node's keys and default, resolved.
#[derive(Debug, Clone)]
pub(crate) struct NodeSteps {
    pub(crate) options: Vec<(char, Step)>,
    pub(crate) default: DefaultStep,
}

/// A validated voice menu: a welcome prompt and a tree (really a graph: sub-menus may
/// lead back up) of [`MenuNode`]s. Share it between calls with an `Arc`.
#[derive(Debug)]
pub struct MenuTree {
    welcome: Option<PromptName>,
    root: NodeIndex,
    nodes: Vec<MenuNode>,
    steps: Vec<NodeSteps>,
}

impl MenuTree {
    /// Checks and builds a menu: node names unique and non-empty; the root and every
    /// `Menu` target exist; keys are `0`-`9`, `*`, `#` and bound once per node; no prompt
    /// or group name is empty; waits are within `1 ms..=`[`MAX_WAIT`]; `max_retries` is
    /// within `1..=`[`MAX_RETRIES_LIMIT`]; extension dialling takes
    /// `1..=`[`MAX_EXTENSION_DIGITS`] digits and ends on `#` or `*`; and every default
    /// can end the walk: it is a group, a hang-up, another menu or the previous menu
    /// (not repeat, not extension dialling, not previous at the root), and following
    /// defaults never loops. A node with no keys at all is allowed: it plays its
    /// prompt and, after its retries, takes its default (an announcement before routing).
    ///
    /// Unreachable nodes are allowed (a menu being prepared).
    pub fn new(
        welcome: Option<PromptName>,
        root: &str,
        nodes: Vec<MenuNode>,
    ) -> Result<MenuTree, MenuError> {
        if welcome.as_deref().is_some_and(str::is_empty) {
            return Err(MenuError::EmptyWelcomePrompt);
        }
        let mut index_of: HashMap<&str, NodeIndex> = HashMap::with_capacity(nodes.len());
        for (index, node) in nodes.iter().enumerate() {
            if node.name.is_empty() {
                return Err(MenuError::EmptyNodeName { index });
            }
            if index_of.insert(node.name.as_str(), index).is_some() {
                return Err(MenuError::DuplicateNode {
                    node: node.name.clone(),
                });
            }
        }
        let root_index = *index_of.get(root).ok_or_else(|| MenuError::UnknownRoot {
            root: root.to_owned(),
        })?;

        let mut steps = Vec::with_capacity(nodes.len());
        for (index, node) in nodes.iter().enumerate() {
            steps.push(resolve_node(node, index == root_index, &index_of)?);
        }
        check_default_loops(&nodes, &steps)?;

        Ok(MenuTree {
            welcome,
            root: root_index,
            nodes,
            steps,
        })
    }

    /// The prompt played once before the root menu, if any.
    pub fn welcome(&self) -> Option<&PromptName> {
        self.welcome.as_ref()
    }

    /// The node every call starts at.
    pub fn root(&self) -> &MenuNode {
        &self.nodes[self.root]
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&MenuNode> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// All nodes, in the order given.
    pub fn nodes(&self) -> &[MenuNode] {
        &self.nodes
    }

    /// Every prompt the menu can ask for (welcome, menu, invalid, extension dialling and
    /// ringback prompts), possibly with repeats: what the daemon must be able to play.
    pub fn prompts(&self) -> impl Iterator<Item = &PromptName> {
        let per_node = self.nodes.iter().flat_map(|node| {
            let extension_prompts = node.options.iter().filter_map(|(_, action)| match action {
                MenuAction::Extension(dialling) => Some(&dialling.prompt),
                _ => None,
            });
            std::iter::once(&node.prompt)
                .chain(node.invalid_prompt.as_ref())
                .chain(node.ringback.as_ref())
                .chain(extension_prompts)
        });
        self.welcome.iter().chain(per_node)
    }

    pub(crate) fn root_index(&self) -> NodeIndex {
        self.root
    }

    pub(crate) fn node_at(&self, index: NodeIndex) -> &MenuNode {
        &self.nodes[index]
    }

    pub(crate) fn steps_at(&self, index: NodeIndex) -> &NodeSteps {
        &self.steps[index]
    }
}

fn resolve_node(
    node: &MenuNode,
    is_root: bool,
    index_of: &HashMap<&str, NodeIndex>,
) -> Result<NodeSteps, MenuError> {
    let name = &node.name;
    check_prompt(name, "prompt", Some(&node.prompt))?;
    check_prompt(name, "invalid_prompt", node.invalid_prompt.as_ref())?;
    check_prompt(name, "ringback", node.ringback.as_ref())?;
    check_wait(name, "timeout".to_owned(), node.timeout)?;
    if !(1..=MAX_RETRIES_LIMIT).contains(&node.max_retries) {
        return Err(MenuError::RetriesOutOfRange {
            node: name.clone(),
            value: node.max_retries,
            max: MAX_RETRIES_LIMIT,
        });
    }

    let mut options = Vec::with_capacity(node.options.len());
    for (position, (key, action)) in node.options.iter().enumerate() {
        let key = *key;
        if !is_keypad_key(key) {
            return Err(MenuError::InvalidKey {
                node: name.clone(),
                key,
            });
        }
        if node.options[..position]
            .iter()
            .any(|(seen, _)| *seen == key)
        {
            return Err(MenuError::DuplicateKey {
                node: name.clone(),
                key,
            });
        }
        options.push((key, resolve_option(node, key, action, index_of)?));
    }

    let by_default = || "the default".to_owned();
    let default = match &node.default {
        MenuAction::Group(group) => DefaultStep::Group(check_group(name, by_default, group)?),
        MenuAction::Menu(target) => {
            DefaultStep::Menu(find_target(name, by_default, target, index_of)?)
        }
        MenuAction::Previous if !is_root => DefaultStep::Previous,
        MenuAction::Hangup => DefaultStep::Hangup,
        MenuAction::Previous => {
            return Err(MenuError::UnusableDefault {
                node: name.clone(),
                action: "previous menu at the root".to_owned(),
            });
        }
        unusable @ (MenuAction::Repeat | MenuAction::Extension(_)) => {
            return Err(MenuError::UnusableDefault {
                node: name.clone(),
                action: unusable.describe().to_owned(),
            });
        }
    };
    Ok(NodeSteps { options, default })
}

fn resolve_option(
    node: &MenuNode,
    key: char,
    action: &MenuAction,
    index_of: &HashMap<&str, NodeIndex>,
) -> Result<Step, MenuError> {
    let name = &node.name;
    let by_key = || format!("key {key:?}");
    Ok(match action {
        MenuAction::Group(group) => Step::Group(check_group(name, by_key, group)?),
        MenuAction::Menu(target) => Step::Menu(find_target(name, by_key, target, index_of)?),
        MenuAction::Extension(dialling) => {
            check_prompt(
                name,
                &format!("the extension dialling prompt of key {key:?}"),
                Some(&dialling.prompt),
            )?;
            if !(1..=MAX_EXTENSION_DIGITS).contains(&dialling.max_digits) {
                return Err(MenuError::ExtensionDigitsOutOfRange {
                    node: name.clone(),
                    key,
                    value: dialling.max_digits,
                    max: MAX_EXTENSION_DIGITS,
                });
            }
            if !matches!(dialling.terminator, '#' | '*') {
                return Err(MenuError::InvalidTerminator {
                    node: name.clone(),
                    key,
                    terminator: dialling.terminator,
                });
            }
            check_wait(
                name,
                format!("inter_digit_timeout of key {key:?}"),
                dialling.inter_digit_timeout,
            )?;
            Step::Extension(dialling.clone())
        }
        MenuAction::Repeat => Step::Repeat,
        MenuAction::Previous => Step::Previous,
        MenuAction::Hangup => Step::Hangup,
    })
}

fn check_prompt(node: &str, which: &str, prompt: Option<&PromptName>) -> Result<(), MenuError> {
    if prompt.is_some_and(|prompt| prompt.is_empty()) {
        return Err(MenuError::EmptyPrompt {
            node: node.to_owned(),
            prompt: which.to_owned(),
        });
    }
    Ok(())
}

fn check_wait(node: &str, field: String, value: Duration) -> Result<(), MenuError> {
    if value < Duration::from_millis(1) || value > MAX_WAIT {
        return Err(MenuError::WaitOutOfRange {
            node: node.to_owned(),
            field,
            value,
            max: MAX_WAIT,
        });
    }
    Ok(())
}

fn check_group(node: &str, by: impl Fn() -> String, group: &str) -> Result<String, MenuError> {
    if group.is_empty() {
        return Err(MenuError::EmptyGroupName {
            node: node.to_owned(),
            by: by(),
        });
    }
    Ok(group.to_owned())
}

fn find_target(
    node: &str,
    by: impl Fn() -> String,
    target: &str,
    index_of: &HashMap<&str, NodeIndex>,
) -> Result<NodeIndex, MenuError> {
    index_of
        .get(target)
        .copied()
        .ok_or_else(|| MenuError::UnknownTarget {
            node: node.to_owned(),
            by: by(),
            target: target.to_owned(),
        })
}

/// Refuses defaults that lead back to where they started.
///
/// Where a default can lead: `Menu(t)` to `t`; `Previous` to the menu that led here,
/// which (because the walker keeps each node at most once on its trail of menus, see
/// [`MenuWalk`](crate::MenuWalk)) is always a node with a `Menu` action, a key's or the
/// default's, naming this one. So the default edges are over-approximated by "every
/// such node", and a tree without a loop among those edges lets a silent caller
/// through at most one visit per node before the walk ends.
fn check_default_loops(nodes: &[MenuNode], steps: &[NodeSteps]) -> Result<(), MenuError> {
    let mut parents: Vec<Vec<NodeIndex>> = vec![Vec::new(); nodes.len()];
    for (from, node_steps) in steps.iter().enumerate() {
        let key_targets = node_steps
            .options
            .iter()
            .filter_map(|(_, step)| match step {
                Step::Menu(target) => Some(*target),
                _ => None,
            });
        let default_target = match node_steps.default {
            DefaultStep::Menu(target) => Some(target),
            _ => None,
        };
        for target in key_targets.chain(default_target) {
            parents[target].push(from);
        }
    }
    let default_edges: Vec<Vec<NodeIndex>> = steps
        .iter()
        .enumerate()
        .map(|(from, node_steps)| match node_steps.default {
            DefaultStep::Menu(target) => vec![target],
            DefaultStep::Previous => parents[from].clone(),
            DefaultStep::Group(_) | DefaultStep::Hangup => Vec::new(),
        })
        .collect();

    // Peel off nodes whose defaults all lead to already-peeled nodes (or end the walk);
    // whatever is left leads only into itself, so it holds a loop.
    let mut pending_edges: Vec<usize> = default_edges.iter().map(Vec::len).collect();
    let mut led_from: Vec<Vec<NodeIndex>> = vec![Vec::new(); nodes.len()];
    for (from, edges) in default_edges.iter().enumerate() {
        for &to in edges {
            led_from[to].push(from);
        }
    }
    let mut peeled = vec![false; nodes.len()];
    let mut ready: VecDeque<NodeIndex> = (0..nodes.len())
        .filter(|&index| pending_edges[index] == 0)
        .collect();
    while let Some(index) = ready.pop_front() {
        peeled[index] = true;
        for &from in &led_from[index] {
            pending_edges[from] -= 1;
            if pending_edges[from] == 0 {
                ready.push_back(from);
            }
        }
    }
    let Some(start) = peeled.iter().position(|done| !done) else {
        return Ok(());
    };

    // Every unpeeled node has an edge to another unpeeled node: follow such edges until
    // a node repeats, and report that loop.
    let mut walked = vec![start];
    let mut current = start;
    loop {
        let Some(&next) = default_edges[current].iter().find(|&&to| !peeled[to]) else {
            // Unreachable by the peeling argument; report the node rather than loop.
            return Err(MenuError::DefaultLoop {
                node: nodes[start].name.clone(),
                cycle: nodes[start].name.clone(),
            });
        };
        if let Some(loop_start) = walked.iter().position(|&seen| seen == next) {
            let cycle: Vec<&str> = walked[loop_start..]
                .iter()
                .chain(std::iter::once(&next))
                .map(|&index| nodes[index].name.as_str())
                .collect();
            return Err(MenuError::DefaultLoop {
                node: nodes[next].name.clone(),
                cycle: cycle.join(" > "),
            });
        }
        walked.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> MenuAction {
        MenuAction::Group(name.to_owned())
    }

    fn menu(name: &str) -> MenuAction {
        MenuAction::Menu(name.to_owned())
    }

    #[test]
    fn resolves_menu_targets_to_indices() {
        let tree = MenuTree::new(
            None,
            "main",
            vec![
                MenuNode::new("sub", "sub", group("g")),
                MenuNode::new("main", "main", menu("sub")).with_option('1', menu("sub")),
            ],
        )
        .unwrap();
        assert_eq!(tree.root_index(), 1);
        assert!(matches!(tree.steps_at(1).options[0], ('1', Step::Menu(0))));
        assert!(matches!(tree.steps_at(1).default, DefaultStep::Menu(0)));
    }

    #[test]
    fn a_default_chain_ending_in_a_group_is_accepted() {
        let tree = MenuTree::new(
            None,
            "a",
            vec![
                MenuNode::new("a", "a", menu("b")),
                MenuNode::new("b", "b", menu("c")),
                MenuNode::new("c", "c", group("g")).with_option('9', menu("a")),
            ],
        );
        assert!(tree.is_ok());
    }

    #[test]
    fn a_previous_default_may_lead_to_any_menu_naming_the_node() {
        let tree = MenuTree::new(
            None,
            "a",
            vec![
                MenuNode::new("a", "a", menu("b")),
                MenuNode::new("b", "b", menu("c")),
                MenuNode::new("c", "c", MenuAction::Previous),
                MenuNode::new("d", "d", group("g")).with_option('1', menu("c")),
            ],
        );
        // c's previous menu can only be b (default) or d (key 1); neither loops back.
        // b -> c -> {b, d}: b -> c -> b is a loop.
        assert_eq!(
            tree.unwrap_err(),
            MenuError::DefaultLoop {
                node: "b".to_owned(),
                cycle: "b > c > b".to_owned()
            }
        );
    }

    #[test]
    fn previous_default_below_a_key_is_accepted() {
        let tree = MenuTree::new(
            None,
            "main",
            vec![
                MenuNode::new("main", "main", group("operator")).with_option('1', menu("sub")),
                MenuNode::new("sub", "sub", MenuAction::Previous),
            ],
        );
        assert!(tree.is_ok());
    }

    #[test]
    fn self_loop_by_default_menu_is_refused() {
        let error = MenuTree::new(
            None,
            "main",
            vec![MenuNode::new("main", "main", menu("main"))],
        )
        .unwrap_err();
        assert_eq!(
            error,
            MenuError::DefaultLoop {
                node: "main".to_owned(),
                cycle: "main > main".to_owned()
            }
        );
    }

    #[test]
    fn a_loop_not_reachable_from_the_first_node_is_still_found() {
        let error = MenuTree::new(
            None,
            "main",
            vec![
                MenuNode::new("main", "main", MenuAction::Hangup),
                MenuNode::new("x", "x", menu("y")),
                MenuNode::new("y", "y", menu("x")),
            ],
        )
        .unwrap_err();
        assert!(matches!(error, MenuError::DefaultLoop { ref cycle, .. } if cycle == "x > y > x"));
    }

    #[test]
    fn keypad_keys() {
        for key in "0123456789*#".chars() {
            assert!(is_keypad_key(key), "{key}");
        }
        for key in ['A', 'a', 'D', ' ', '>', '٣'] {
            assert!(!is_keypad_key(key), "{key}");
        }
    }

    #[test]
    fn prompts_lists_every_prompt() {
        let tree = MenuTree::new(
            Some("welcome".into()),
            "main",
            vec![
                MenuNode::new("main", "main", MenuAction::Hangup)
                    .with_invalid_prompt("invalid")
                    .with_ringback("music")
                    .with_option(
                        '0',
                        MenuAction::Extension(ExtensionDialling::new("dial", 4)),
                    ),
            ],
        )
        .unwrap();
        let prompts: Vec<&str> = tree.prompts().map(|prompt| &**prompt).collect();
        assert_eq!(prompts, ["welcome", "main", "invalid", "music", "dial"]);
    }
}
