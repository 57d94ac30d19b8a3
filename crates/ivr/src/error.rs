//! Why a menu tree was refused. A menu is checked as a whole before any call walks it,
//! so a caller never meets a dangling sub-menu or a menu that can never end; every error
//! names the node (and the key or field) an operator has to fix.

use std::time::Duration;

/// A [`MenuTree`](crate::MenuTree) that [`MenuTree::new`](crate::MenuTree::new) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MenuError {
    /// A node has an empty name, so nothing could refer to it.
    #[error("menu node #{index} has an empty name")]
    EmptyNodeName {
        /// Its position in the node list given to `MenuTree::new`.
        index: usize,
    },
    /// Two nodes share a name.
    #[error("menu node {node:?} is defined more than once")]
    DuplicateNode { node: String },
    /// The root names no node.
    #[error("root menu {root:?} is not one of the menu nodes")]
    UnknownRoot { root: String },
    /// The welcome prompt is set but empty.
    #[error("the welcome prompt is set but empty")]
    EmptyWelcomePrompt,
    /// One of a node's prompts is set but empty.
    #[error("menu node {node:?}: {prompt} is empty")]
    EmptyPrompt {
        node: String,
        /// Which prompt: "prompt", "invalid_prompt", "ringback", or the extension
        /// dialling prompt of a key.
        prompt: String,
    },
    /// A key that a telephone keypad cannot send.
    #[error("menu node {node:?}: key {key:?} is not a keypad key (0-9, * or #)")]
    InvalidKey { node: String, key: char },
    /// One key bound to two actions.
    #[error("menu node {node:?}: key {key:?} is bound more than once")]
    DuplicateKey { node: String, key: char },
    /// A `Menu` action (a key's or the default) names no node.
    #[error("menu node {node:?}: {by} goes to menu {target:?}, which is not one of the menu nodes")]
    UnknownTarget {
        node: String,
        /// "key '1'" or "the default".
        by: String,
        target: String,
    },
    /// A `Group` action with an empty group name.
    #[error("menu node {node:?}: {by} routes to a hunt group with an empty name")]
    EmptyGroupName { node: String, by: String },
    /// A wait that is zero (the caller could never press in time) or absurdly long.
    #[error("menu node {node:?}: {field} is {value:?}, outside 1 ms..={max:?}")]
    WaitOutOfRange {
        node: String,
        /// "timeout", or "inter_digit_timeout of key '0'".
        field: String,
        value: Duration,
        max: Duration,
    },
    /// `max_retries` outside `1..=MAX_RETRIES_LIMIT`.
    #[error("menu node {node:?}: max_retries is {value}, outside 1..={max}")]
    RetriesOutOfRange { node: String, value: u32, max: u32 },
    /// An extension length outside `1..=MAX_EXTENSION_DIGITS`.
    #[error(
        "menu node {node:?}: key {key:?} dials extensions of at most {value} digits, outside 1..={max}"
    )]
    ExtensionDigitsOutOfRange {
        node: String,
        key: char,
        value: u8,
        max: u8,
    },
    /// An extension terminator other than `#` or `*`.
    #[error(
        "menu node {node:?}: key {key:?} ends extensions with {terminator:?}; only '#' or '*' can"
    )]
    InvalidTerminator {
        node: String,
        key: char,
        terminator: char,
    },
    /// A default that could not end the walk: `Repeat` (the caller who pressed nothing
    /// would hear the menu forever), `Extension` (a caller who pressed nothing is not
    /// dialling an extension), or `Previous` at the root (which repeats the root).
    #[error(
        "menu node {node:?}: the default (taken after max_retries failures) is {action}, which never ends the menu; use a group, a hang-up, another menu, or (below the root) the previous menu"
    )]
    UnusableDefault {
        node: String,
        /// "repeat", "extension dialling" or "previous menu at the root".
        action: String,
    },
    /// Defaults that lead back to where they started, so a silent caller would go round
    /// forever.
    #[error(
        "menu node {node:?}: the defaults go round in a loop ({cycle}), so a caller who presses nothing would never leave the menu"
    )]
    DefaultLoop {
        node: String,
        /// The loop as node names, e.g. "main > sub > main".
        cycle: String,
    },
}
