//! `[[menu]]`: voice menus (IVR, 语音导航). A plan with `menu` answers the call and runs
//! the menu; the caller's keys pick a hunt group, a sub-menu, or extension dialling.
//!
//! A menu is a set of named nodes (`[[menu.node]]`), each a prompt and the keys it
//! accepts (`[menu.node.options]`), starting at `root`. This module checks what can be
//! checked from the file: every prompt, group and node a menu names exists, groups are
//! the menu's enterprise's own, keys are keypad keys, and a node's `default` (taken when
//! the caller makes no valid choice) is an action that moves the call on. Whether
//! following defaults can loop is the menu walker's check (`sihai-ivr`'s `MenuTree`),
//! which the daemon runs when it builds the menus.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;

use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::{ArraySection, render_key};
use crate::duration::{self, RawDuration};
use crate::extension::{ExtensionOwners, MAX_EXTENSION_DIGITS};
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "menu";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a node (or extension dialling) waits for a key; the menu walker's limit.
const MAX_WAIT: Duration = Duration::from_secs(300);
const MIN_WAIT: Duration = Duration::from_secs(1);
const DEFAULT_RETRIES: u32 = 3;
/// More only keeps a lost caller on the line; the menu walker's limit.
const MAX_RETRIES: u32 = 10;
const DEFAULT_INTER_DIGIT_TIMEOUT: Duration = Duration::from_secs(3);
const DEFAULT_TERMINATOR: char = '#';

/// The actions a node's `default` may take, for messages.
const DEFAULT_CHOICES: &str = "{ group = \"...\" }, { menu = \"...\" }, \"previous\" or \"hangup\"";

/// One voice menu, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuConfig {
    /// Unique among menus; what a plan's `menu` refers to.
    pub name: String,
    /// The [`crate::Enterprise`] id it belongs to; its groups are that enterprise's.
    pub enterprise: String,
    /// A [`crate::PromptConfig`] name played once when the call is answered.
    pub welcome: Option<String>,
    /// The name of the node the menu starts at; one of `nodes`.
    pub root: String,
    /// At least one; names unique within the menu. File order.
    pub nodes: Vec<MenuNodeConfig>,
}

impl MenuConfig {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&MenuNodeConfig> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// The menu as the walker runs it. Validation has built it once (the walker's own
    /// checks, such as defaults that loop, are reported by `sihai check`), so on a
    /// validated configuration this only fails if the two crates disagree.
    pub fn tree(&self) -> Result<sihai_ivr::MenuTree, sihai_ivr::MenuError> {
        use sihai_ivr::{ExtensionDialling, MenuAction, MenuNode};
        use std::sync::Arc;
        fn action(action: &MenuActionConfig) -> MenuAction {
            match action {
                MenuActionConfig::Group(group) => MenuAction::Group(group.clone()),
                MenuActionConfig::Menu(node) => MenuAction::Menu(node.clone()),
                MenuActionConfig::Extension {
                    prompt,
                    max_digits,
                    inter_digit_timeout,
                    terminator,
                } => MenuAction::Extension(ExtensionDialling {
                    prompt: Arc::from(prompt.as_str()),
                    max_digits: *max_digits,
                    inter_digit_timeout: *inter_digit_timeout,
                    terminator: *terminator,
                }),
                MenuActionConfig::Repeat => MenuAction::Repeat,
                MenuActionConfig::Previous => MenuAction::Previous,
                MenuActionConfig::Hangup => MenuAction::Hangup,
            }
        }
        let nodes = self
            .nodes
            .iter()
            .map(|node| MenuNode {
                name: node.name.clone(),
                prompt: Arc::from(node.prompt.as_str()),
                options: node
                    .options
                    .iter()
                    .map(|(key, option)| (*key, action(option)))
                    .collect(),
                timeout: node.timeout,
                max_retries: node.retries,
                invalid_prompt: node.invalid.as_deref().map(Arc::from),
                default: action(&node.default),
                ringback: node.ringback.as_deref().map(Arc::from),
            })
            .collect();
        sihai_ivr::MenuTree::new(self.welcome.as_deref().map(Arc::from), &self.root, nodes)
    }
}

/// One node of a menu: a prompt listing the choices and the keys that make them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuNodeConfig {
    /// Unique within its menu; what `{ menu = "..." }` actions and the menu's `root`
    /// refer to.
    pub name: String,
    /// A [`crate::PromptConfig`] name: the menu prompt ("press 1 for sales ...").
    pub prompt: String,
    /// How long to wait for a key after the prompt; 1 s to 300 s, default 5 s.
    pub timeout: Duration,
    /// How many invalid keys or timeouts before `default` is taken; 1 to 10, default 3.
    pub retries: u32,
    /// A prompt played after an invalid key or a timeout.
    pub invalid: Option<String>,
    /// A prompt: the ringback while a group or extension chosen here rings.
    pub ringback: Option<String>,
    /// Taken when the retries run out: never [`MenuActionConfig::Repeat`] or
    /// [`MenuActionConfig::Extension`], and not [`MenuActionConfig::Previous`] at the
    /// root.
    pub default: MenuActionConfig,
    /// Each key (`0`-`9`, `*`, `#`) once, in file order.
    pub options: Vec<(char, MenuActionConfig)>,
}

/// What a key, or a node's default, does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuActionConfig {
    /// Ring this hunt group (of the menu's enterprise); the menu ends.
    Group(String),
    /// Go to this node of the same menu.
    Menu(String),
    /// Collect an extension number (总机/分机) and ring that [`crate::ExtensionConfig`]'s
    /// group; the menu ends.
    Extension {
        /// A prompt played first, e.g. "please dial the extension number".
        prompt: String,
        /// Dialling ends as soon as this many digits are in; 1 to 32.
        max_digits: u8,
        /// Dialling ends this long after the last digit; 1 s to 300 s, default 3 s.
        inter_digit_timeout: Duration,
        /// Ends dialling at once: `#` (the default) or `*`.
        terminator: char,
    },
    /// Play this node again.
    Repeat,
    /// Go back to the node that led here; at the root, the same as repeat.
    Previous,
    /// Hang up; the menu ends.
    Hangup,
}

/// One `[[menu]]` as written, nodes included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[menu]] table")]
pub(crate) struct RawMenu {
    name: Spanned<String>,
    enterprise: Spanned<String>,
    welcome: Option<Spanned<String>>,
    root: Spanned<String>,
    node: Option<Spanned<Vec<Spanned<RawNode>>>>,
}

/// One `[[menu.node]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[menu.node]] table")]
struct RawNode {
    name: Spanned<String>,
    prompt: Spanned<String>,
    timeout: Option<Spanned<RawDuration>>,
    retries: Option<Spanned<u64>>,
    invalid: Option<Spanned<String>>,
    ringback: Option<Spanned<String>>,
    default: Spanned<RawAction>,
    /// Keys as written; TOML itself rejects a key written twice. Sorted by key, not
    /// file order: the span gives the file order back.
    options: Option<BTreeMap<Spanned<String>, Spanned<RawAction>>>,
}

/// An action as written: a keyword (`"repeat"`) or a one-entry table
/// (`{ group = "sales" }`). Keywords stay strings so that a misspelt one is reported by
/// validation along with everything else.
#[derive(Debug)]
enum RawAction {
    Keyword(String),
    Table(Box<RawActionTable>),
}

impl<'de> Deserialize<'de> for RawAction {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ActionVisitor;

        impl<'de> Visitor<'de> for ActionVisitor {
            type Value = RawAction;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(
                    "a menu action: { group = \"...\" }, { menu = \"...\" }, \
                     { extension = { ... } }, \"repeat\", \"previous\" or \"hangup\"",
                )
            }

            fn visit_str<E: de::Error>(self, keyword: &str) -> Result<RawAction, E> {
                Ok(RawAction::Keyword(keyword.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawAction, A::Error> {
                RawActionTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|table| RawAction::Table(Box::new(table)))
            }
        }

        deserializer.deserialize_any(ActionVisitor)
    }
}

/// `{ group = "..." }`, `{ menu = "..." }` or `{ extension = { ... } }`; that exactly one
/// is given is checked by validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a menu action table")]
struct RawActionTable {
    group: Option<Spanned<String>>,
    menu: Option<Spanned<String>>,
    extension: Option<Spanned<RawDialling>>,
}

/// Extension dialling as written.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "extension dialling, e.g. { prompt = \"dial-extension\", max_digits = 4 }"
)]
struct RawDialling {
    prompt: Spanned<String>,
    max_digits: Spanned<u64>,
    inter_digit_timeout: Option<Spanned<RawDuration>>,
    terminator: Option<Spanned<String>>,
}

/// What the menus refer to.
pub(crate) struct Catalogs<'c> {
    pub enterprises: &'c Catalog,
    pub groups: &'c Catalog,
    pub prompts: &'c Catalog,
    pub extensions: &'c ExtensionOwners,
}

/// The validation pass for `[[menu]]`: the menus, and the catalog of their names with
/// their enterprises (for plans).
pub(crate) fn validate(
    raw: ArraySection<RawMenu>,
    catalogs: &Catalogs<'_>,
    diagnostics: &mut Diagnostics,
) -> (Vec<MenuConfig>, Catalog) {
    let mut names = Catalog::new(SECTION, "name", &raw);
    let mut menus = Vec::with_capacity(raw.entries.len());
    for (index, entry) in &raw.entries {
        let errors_before = diagnostics.count();
        let field = entry_field(SECTION, *index);
        let menu_span = entry.span();
        let menu = entry.get_ref();
        check::name(&menu.name, || format!("{field}.name"), diagnostics);
        catalogs.enterprises.check_reference(
            &menu.enterprise,
            format!("{field}.enterprise"),
            None,
            diagnostics,
        );
        let owner = catalogs.enterprises.owner(&menu.enterprise);
        names.declare(
            menu.name.get_ref(),
            menu.name.span(),
            field.clone(),
            owner.map(str::to_owned),
            diagnostics,
        );
        if let Some(welcome) = &menu.welcome {
            catalogs.prompts.check_reference(
                welcome,
                format!("{field}.welcome"),
                owner,
                diagnostics,
            );
        }
        let raw_nodes: &[Spanned<RawNode>] = menu
            .node
            .as_ref()
            .map(|nodes| nodes.get_ref().as_slice())
            .unwrap_or_default();
        let nodes = NodeNames::declare(raw_nodes, &field, diagnostics);
        if raw_nodes.is_empty() {
            diagnostics.report(
                // `node = []` where it is written; otherwise the [[menu]] header.
                Some(menu.node.as_ref().map_or(menu_span, Spanned::span)),
                format!("{field}.node"),
                format!(
                    "a menu needs at least one [[menu.node]], and one of them named {:?} \
                     (its root)",
                    menu.root.get_ref()
                ),
            );
        } else if !nodes.contains(menu.root.get_ref()) {
            diagnostics.report(
                Some(menu.root.span()),
                format!("{field}.root"),
                nodes.missing(menu.root.get_ref(), menu.name.get_ref()),
            );
        }
        let context = MenuContext {
            catalogs,
            owner,
            menu: menu.name.get_ref(),
            nodes: &nodes,
        };
        // The first node of the root's name; a later namesake is a duplicate, reported.
        let root_position = raw_nodes
            .iter()
            .position(|node| node.get_ref().name.get_ref() == menu.root.get_ref());
        let validated_nodes = raw_nodes
            .iter()
            .enumerate()
            .map(|(position, node)| {
                let node_field = format!("{field}.node[{position}]");
                let is_root = root_position == Some(position);
                validate_node(node.get_ref(), &node_field, is_root, &context, diagnostics)
            })
            .collect();
        let validated = MenuConfig {
            name: menu.name.get_ref().clone(),
            enterprise: menu.enterprise.get_ref().clone(),
            welcome: menu.welcome.as_ref().map(|w| w.get_ref().clone()),
            root: menu.root.get_ref().clone(),
            nodes: validated_nodes,
        };
        // What the walker checks beyond this file's rules (defaults that loop back
        // without ever ending the call, say); only for a menu clean so far, so a problem
        // is not reported twice.
        if diagnostics.count() == errors_before
            && let Err(problem) = validated.tree()
        {
            diagnostics.report(Some(entry.span()), field.clone(), problem.to_string());
        }
        menus.push(validated);
    }
    names.add_malformed(&raw, diagnostics);
    (menus, names)
}

/// The node names of one menu, in file order, duplicates reported.
struct NodeNames {
    order: Vec<String>,
}

impl NodeNames {
    fn declare(
        raw: &[Spanned<RawNode>],
        menu_field: &str,
        diagnostics: &mut Diagnostics,
    ) -> NodeNames {
        let mut first_declared: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut order = Vec::with_capacity(raw.len());
        for (position, node) in raw.iter().enumerate() {
            let name = node.get_ref().name.get_ref();
            let span = node.get_ref().name.span();
            match first_declared.get(name.as_str()) {
                Some((first, line)) => diagnostics.report(
                    Some(span),
                    format!("{menu_field}.node[{position}].name"),
                    format!(
                        "duplicate node name {name:?}: already declared by \
                         {menu_field}.node[{first}] at line {line}"
                    ),
                ),
                None => {
                    first_declared.insert(name, (position, diagnostics.source.line_of(&span)));
                    order.push(name.clone());
                }
            }
        }
        NodeNames { order }
    }

    fn contains(&self, name: &str) -> bool {
        self.order.iter().any(|declared| declared == name)
    }

    /// The message for a reference to a node the menu does not have.
    fn missing(&self, name: &str, menu: &str) -> String {
        let listed: Vec<String> = self.order.iter().map(|n| format!("{n:?}")).collect();
        format!(
            "no [[menu.node]] named {name:?} in menu {menu:?}; its nodes are {}",
            listed.join(", ")
        )
    }
}

/// What a node's actions are checked against.
struct MenuContext<'c> {
    catalogs: &'c Catalogs<'c>,
    /// The menu's enterprise, when it is a declared one.
    owner: Option<&'c str>,
    menu: &'c str,
    nodes: &'c NodeNames,
}

fn validate_node(
    node: &RawNode,
    field: &str,
    is_root: bool,
    context: &MenuContext<'_>,
    diagnostics: &mut Diagnostics,
) -> MenuNodeConfig {
    let prompts = context.catalogs.prompts;
    check::name(&node.name, || format!("{field}.name"), diagnostics);
    prompts.check_reference(
        &node.prompt,
        format!("{field}.prompt"),
        context.owner,
        diagnostics,
    );
    for (key, prompt) in [("invalid", &node.invalid), ("ringback", &node.ringback)] {
        if let Some(prompt) = prompt {
            prompts.check_reference(prompt, format!("{field}.{key}"), context.owner, diagnostics);
        }
    }
    let timeout = duration::validated(
        node.timeout.as_ref(),
        DEFAULT_TIMEOUT,
        MIN_WAIT..=MAX_WAIT,
        || format!("{field}.timeout"),
        diagnostics,
    );
    let retries = check::bounded_u32(
        node.retries.as_ref(),
        DEFAULT_RETRIES,
        1..=MAX_RETRIES,
        || format!("{field}.retries"),
        diagnostics,
    );
    let default_field = format!("{field}.default");
    let default = validate_action(&node.default, &default_field, context, diagnostics);
    check_default(
        &node.default,
        &default,
        &default_field,
        is_root,
        diagnostics,
    );

    let mut options: Vec<(&Spanned<String>, &Spanned<RawAction>)> =
        node.options.iter().flatten().collect();
    options.sort_by_key(|(key, _)| key.span().start);
    let options = options
        .into_iter()
        .filter_map(|(key, action)| {
            let option_field = format!("{field}.options.{}", render_key(key.get_ref()));
            let action = validate_action(action, &option_field, context, diagnostics);
            match keypad_key(key.get_ref()) {
                Some(key) => Some((key, action)),
                None => {
                    diagnostics.report(
                        Some(key.span()),
                        option_field,
                        format!(
                            "invalid key {:?}: an option is one keypad key, 0-9, * or #",
                            key.get_ref()
                        ),
                    );
                    None
                }
            }
        })
        .collect();
    MenuNodeConfig {
        name: node.name.get_ref().clone(),
        prompt: node.prompt.get_ref().clone(),
        timeout,
        retries,
        invalid: node.invalid.as_ref().map(|p| p.get_ref().clone()),
        ringback: node.ringback.as_ref().map(|p| p.get_ref().clone()),
        default,
        options,
    }
}

/// `text` as a keypad key, if it is exactly one of `0`-`9`, `*`, `#`.
fn keypad_key(text: &str) -> Option<char> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(key @ ('0'..='9' | '*' | '#')), None) => Some(key),
        _ => None,
    }
}

/// Reports a default that cannot move the call on: the caller has already made no
/// valid choice `retries` times, so repeating or asking for an extension would keep a
/// silent caller in the menu for ever.
fn check_default(
    raw: &Spanned<RawAction>,
    default: &MenuActionConfig,
    field: &str,
    is_root: bool,
    diagnostics: &mut Diagnostics,
) {
    let problem = match default {
        MenuActionConfig::Repeat => format!(
            "\"repeat\" cannot be a default: the default is taken when the caller has made no \
             valid choice, and repeating would keep them in the menu for ever; use \
             {DEFAULT_CHOICES}"
        ),
        MenuActionConfig::Extension { .. } => format!(
            "extension dialling cannot be a default: the default is taken when the caller \
             has made no valid choice; use {DEFAULT_CHOICES}"
        ),
        MenuActionConfig::Previous if is_root => "\"previous\" cannot be the root node's \
             default: the root has no previous menu; use { group = \"...\" }, \
             { menu = \"...\" } or \"hangup\""
            .to_owned(),
        _ => return,
    };
    diagnostics.report(Some(raw.span()), field.to_owned(), problem);
}

/// Checks one action and returns it (`Hangup` in place of one too broken to read; an
/// error has then been reported).
fn validate_action(
    raw: &Spanned<RawAction>,
    field: &str,
    context: &MenuContext<'_>,
    diagnostics: &mut Diagnostics,
) -> MenuActionConfig {
    let table = match raw.get_ref() {
        RawAction::Keyword(keyword) => {
            return match keyword.as_str() {
                "repeat" => MenuActionConfig::Repeat,
                "previous" => MenuActionConfig::Previous,
                "hangup" => MenuActionConfig::Hangup,
                _ => {
                    diagnostics.report(
                        Some(raw.span()),
                        field.to_owned(),
                        format!(
                            "unknown action {keyword:?}: expected \"repeat\", \"previous\" or \
                             \"hangup\", or a table: {{ group = \"...\" }}, {{ menu = \"...\" }} \
                             or {{ extension = {{ prompt = \"...\", max_digits = 4 }} }}"
                        ),
                    );
                    MenuActionConfig::Hangup
                }
            };
        }
        RawAction::Table(table) => table,
    };
    match (&table.group, &table.menu, &table.extension) {
        (Some(group), None, None) => {
            context.catalogs.groups.check_reference(
                group,
                format!("{field}.group"),
                context.owner,
                diagnostics,
            );
            MenuActionConfig::Group(group.get_ref().clone())
        }
        (None, Some(node), None) => {
            if !context.nodes.contains(node.get_ref()) {
                diagnostics.report(
                    Some(node.span()),
                    format!("{field}.menu"),
                    context.nodes.missing(node.get_ref(), context.menu),
                );
            }
            MenuActionConfig::Menu(node.get_ref().clone())
        }
        (None, None, Some(dialling)) => validate_dialling(
            dialling,
            &format!("{field}.extension"),
            context,
            diagnostics,
        ),
        (None, None, None) => {
            diagnostics.report(
                Some(raw.span()),
                field.to_owned(),
                "an action table needs one of group, menu or extension, \
                 e.g. { group = \"sales\" }",
            );
            MenuActionConfig::Hangup
        }
        (group, node, dialling) => {
            let given: Vec<&str> = [
                group.as_ref().map(|_| "group"),
                node.as_ref().map(|_| "menu"),
                dialling.as_ref().map(|_| "extension"),
            ]
            .into_iter()
            .flatten()
            .collect();
            diagnostics.report(
                Some(raw.span()),
                field.to_owned(),
                format!(
                    "an action does one thing: give one of group, menu or extension, not {}",
                    given.join(" and ")
                ),
            );
            MenuActionConfig::Hangup
        }
    }
}

fn validate_dialling(
    raw: &Spanned<RawDialling>,
    field: &str,
    context: &MenuContext<'_>,
    diagnostics: &mut Diagnostics,
) -> MenuActionConfig {
    let dialling = raw.get_ref();
    context.catalogs.prompts.check_reference(
        &dialling.prompt,
        format!("{field}.prompt"),
        context.owner,
        diagnostics,
    );
    let max_digits = check::bounded(
        Some(&dialling.max_digits),
        4,
        1..=MAX_EXTENSION_DIGITS as u64,
        || format!("{field}.max_digits"),
        diagnostics,
    );
    let inter_digit_timeout = duration::validated(
        dialling.inter_digit_timeout.as_ref(),
        DEFAULT_INTER_DIGIT_TIMEOUT,
        MIN_WAIT..=MAX_WAIT,
        || format!("{field}.inter_digit_timeout"),
        diagnostics,
    );
    let terminator = match &dialling.terminator {
        None => DEFAULT_TERMINATOR,
        Some(written) => match written.get_ref().as_str() {
            "#" => '#',
            "*" => '*',
            other => {
                diagnostics.report(
                    Some(written.span()),
                    format!("{field}.terminator"),
                    format!(
                        "invalid terminator {other:?}: \"#\" or \"*\" (a digit would be taken \
                         as part of the extension number)"
                    ),
                );
                DEFAULT_TERMINATOR
            }
        },
    };
    if let Some(enterprise) = context.owner
        && !context.catalogs.extensions.may_have_extensions(enterprise)
    {
        diagnostics.report(
            Some(raw.span()),
            field.to_owned(),
            format!(
                "extension dialling, but enterprise {enterprise:?} has no [[extension]]; \
                 declare its extensions, e.g. [[extension]] enterprise = {enterprise:?}, \
                 number = \"8001\", group = \"...\""
            ),
        );
    }
    MenuActionConfig::Extension {
        prompt: dialling.prompt.get_ref().clone(),
        max_digits: u8::try_from(max_digits).unwrap_or(u8::MAX),
        inter_digit_timeout,
        terminator,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypad_keys() {
        for key in ["0", "5", "9", "*", "#"] {
            assert!(keypad_key(key).is_some(), "{key}");
        }
        for bad in ["", "10", "a", "A", "+", "１", "#1", " 1"] {
            assert_eq!(keypad_key(bad), None, "{bad:?}");
        }
    }
}
