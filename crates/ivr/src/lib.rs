//! The voice-menu walker (IVR, 语音导航): which prompt plays, what a key means, and where
//! the call goes.
//!
//! A 400 number's plan may start with a voice menu: the call is answered, a welcome and
//! a menu prompt play, the caller presses keys, and the menu decides: a hunt group ("1
//! for sales, 2 for service"), a sub-menu, an extension on a switchboard (总机/分机: the
//! caller keys `8001#` and the phones bound to extension 8001 ring), repeat, the previous
//! menu, or hang up.
//!
//! This crate decides and nothing else. A [`MenuTree`] is the menu, checked as a whole
//! when it is built; a [`MenuWalk`] is one call's way through it. The call state machine
//! feeds the walk events (a prompt finished, a key arrived, time passed) and carries out
//! its [`IvrAction`]s (play a prompt, stop playback, route the call). Like the other
//! sihai cores it has no threads, sockets or clock of its own: every input carries the
//! caller's `now`, the caller sleeps until [`MenuWalk::poll_timeout`] and then calls
//! [`MenuWalk::handle_timeout`], so "the caller waits 5 s, hears the invalid-key prompt,
//! presses 2" runs in microseconds. [`MenuWalk`] documents the exact rules: barge-in,
//! retries, extension dialling, `Previous`, and the [`MenuWalk::path`] format.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use sihai_ivr::*;
//!
//! let main = MenuNode::new("main", "main-menu", MenuAction::Group("operator".into()))
//!     .with_option('1', MenuAction::Group("sales".into()))
//!     .with_option('2', MenuAction::Group("service".into()))
//!     .with_option('0', MenuAction::Extension(ExtensionDialling::new("dial-extension", 4)))
//!     .with_invalid_prompt("invalid-key")
//!     .with_ringback("hold-music");
//! let tree = Arc::new(MenuTree::new(Some("welcome".into()), "main", vec![main])?);
//!
//! let t0 = Instant::now();
//! let mut walk = MenuWalk::start(tree, t0);
//! assert_eq!(walk.poll_action(), Some(IvrAction::Play("welcome".into())));
//! assert_eq!(walk.poll_action(), Some(IvrAction::Play("main-menu".into())));
//! walk.on_prompt_finished(t0 + Duration::from_secs(3)); // welcome
//! let t1 = t0 + Duration::from_secs(8);
//! walk.on_prompt_finished(t1); // menu: now the caller has 5 s to press a key
//! assert_eq!(walk.poll_timeout(), Some(t1 + Duration::from_secs(5)));
//!
//! // The caller says nothing, hears the invalid-key prompt and the menu again.
//! walk.handle_timeout(t1 + Duration::from_secs(5));
//! assert_eq!(walk.poll_action(), Some(IvrAction::Play("invalid-key".into())));
//! assert_eq!(walk.poll_action(), Some(IvrAction::Play("main-menu".into())));
//!
//! // During the invalid-key prompt the caller presses 2: barge-in, then service.
//! walk.on_digit('2', t1 + Duration::from_secs(6));
//! assert_eq!(walk.poll_action(), Some(IvrAction::StopPlayback));
//! let service = Outcome::Group { group: "service".into(), ringback: Some("hold-music".into()) };
//! assert_eq!(walk.poll_action(), Some(IvrAction::Done(service.clone())));
//! assert_eq!(walk.outcome(), Some(&service));
//! assert_eq!(walk.path(), "2");
//! # Ok::<(), MenuError>(())
//! ```

mod error;
mod tree;
mod walk;

pub use error::MenuError;
pub use tree::{
    DEFAULT_INTER_DIGIT_TIMEOUT, DEFAULT_KEY_TIMEOUT, DEFAULT_MAX_RETRIES, ExtensionDialling,
    MAX_EXTENSION_DIGITS, MAX_RETRIES_LIMIT, MAX_WAIT, MenuAction, MenuNode, MenuTree, PromptName,
    is_keypad_key,
};
pub use walk::{IvrAction, MenuWalk, Outcome};
