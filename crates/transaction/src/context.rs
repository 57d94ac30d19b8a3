//! The narrow world a state machine acts on: send bytes, arm or disarm its own timers,
//! tell the TU something. Machines see nothing else of the layer (no maps, no other
//! transactions), which keeps each of them readable next to its RFC figure.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sihai_sip::{Message, Peer};

use crate::key::{ClientKey, ServerKey, TransactionKey};
use crate::timer::{Armed, Timer, TimerQueue, TxId};
use crate::{Event, TimerConfig, Transmit};

/// What the layer hands back to its caller.
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) timers: TimerQueue,
}

/// Everything of the layer one transaction may touch during one input.
pub(crate) struct Env<'a> {
    pub(crate) now: Instant,
    pub(crate) config: &'a TimerConfig,
    pub(crate) id: TxId,
    pub(crate) armed: &'a mut Armed,
    pub(crate) out: &'a mut Outputs,
}

/// An [`Env`] plus the key of the transaction, typed by kind so that only client
/// machines can pass responses up.
pub(crate) struct Ctx<'a, K> {
    pub(crate) key: &'a K,
    pub(crate) env: Env<'a>,
}

pub(crate) type ServerCtx<'a> = Ctx<'a, ServerKey>;
pub(crate) type ClientCtx<'a> = Ctx<'a, ClientKey>;

impl<K: Clone + Into<TransactionKey>> Ctx<'_, K> {
    pub(crate) fn config(&self) -> &TimerConfig {
        self.env.config
    }

    pub(crate) fn send(&mut self, destination: Peer, payload: Bytes) {
        self.env.out.transmits.push_back(Transmit {
            destination,
            payload,
        });
    }

    /// Arms (or re-arms) `timer` to fire `after` from now. A deadline beyond what
    /// `Instant` can represent means never.
    pub(crate) fn arm(&mut self, timer: Timer, after: Duration) {
        match self.env.now.checked_add(after) {
            Some(at) => {
                self.env.armed.set(timer, at);
                self.env.out.timers.push(at, after, self.env.id, timer);
            }
            None => self.env.armed.clear(timer),
        }
    }

    pub(crate) fn disarm(&mut self, timer: Timer) {
        self.env.armed.clear(timer);
    }

    pub(crate) fn timeout(&mut self) {
        let key = self.key.clone().into();
        self.env.out.events.push_back(Event::Timeout { key });
    }
}

impl Ctx<'_, ClientKey> {
    pub(crate) fn pass_up(&mut self, response: Message) {
        let key = self.key.clone();
        self.env
            .out
            .events
            .push_back(Event::Response { key, response });
    }
}
