//! Hunt groups as the B2BUA keeps them across calls ([`GroupEntry`]): the phone list
//! the hunt sees, the channel counters every call to the group shares, how they carry
//! over a reload, and starting a call's [`Hunt`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sihai_config::PhoneTarget;
use sihai_hunt::{GroupState, Hunt, KeyedGroupState, Strategy};

/// A hunt group as the B2BUA keeps it across calls.
#[derive(Debug)]
pub(super) struct GroupEntry {
    /// The configuration the phone list was built from (identity tells a reload).
    config: Arc<sihai_routing::Group>,
    phones: Arc<[sihai_hunt::Phone]>,
    /// Channel counts, idle times and round-robin position, by phone identity so that
    /// they follow the phones across a reload whatever the new list's shape.
    state: KeyedGroupState<PhoneTarget>,
}

impl GroupEntry {
    fn new(group: &Arc<sihai_routing::Group>) -> GroupEntry {
        GroupEntry {
            config: group.clone(),
            state: KeyedGroupState::new(phone_keys(group)),
            phones: hunt_phones(group),
        }
    }

    /// The group as a reload left it: the hunt's phones rebuilt, the counters carried
    /// over phone by phone.
    fn relist(&mut self, group: &Arc<sihai_routing::Group>) {
        self.state.relist(&phone_keys(group));
        self.phones = hunt_phones(group);
        self.config = group.clone();
    }
}

fn phone_keys(group: &sihai_routing::Group) -> Vec<PhoneTarget> {
    group.phones.iter().map(|p| p.target.clone()).collect()
}

fn hunt_phones(group: &sihai_routing::Group) -> Arc<[sihai_hunt::Phone]> {
    group
        .phones
        .iter()
        .map(|p| sihai_hunt::Phone {
            ring_timeout: p.ring_timeout,
            capacity: p.capacity,
            weight: p.weight,
            enabled: p.enabled,
        })
        .collect()
}

/// Runs `f` (a step of a hunt over `group`'s phone list) on the group's shared
/// counters. A call whose hunt started on another version of the group (before a
/// reload) indexes its phones into that version's list: its steps are translated to
/// the same phones, by identity, in the current state.
pub(super) fn with_group_state<R>(
    groups: &mut HashMap<String, GroupEntry>,
    group: &Arc<sihai_routing::Group>,
    f: impl FnOnce(&mut GroupState) -> R,
) -> R {
    // Looked up before inserting: the entry exists on every step but the first, and
    // `entry()` would allocate the name each time.
    if !groups.contains_key(&group.name) {
        groups.insert(group.name.clone(), GroupEntry::new(group));
    }
    let Some(entry) = groups.get_mut(&group.name) else {
        unreachable!("inserted above")
    };
    if Arc::ptr_eq(&entry.config, group) {
        f(entry.state.current())
    } else {
        entry
            .state
            .with_list(group.phones.iter().map(|p| &p.target), f)
    }
}

/// A hunt of `group`'s phones, started unless the call waits for its menu first. A
/// reload that replaced the group carries its counters over by phone identity, so that
/// calls still up from before keep their phones' channels.
pub(super) fn new_hunt(
    groups: &mut HashMap<String, GroupEntry>,
    group: &Arc<sihai_routing::Group>,
    timeout: Duration,
    now: Instant,
    start: bool,
) -> Hunt {
    let entry = groups
        .entry(group.name.clone())
        .or_insert_with(|| GroupEntry::new(group));
    if !Arc::ptr_eq(&entry.config, group) {
        entry.relist(group);
    }
    let mut hunt = Hunt::new(
        strategy(group.strategy),
        entry.phones.clone(),
        timeout,
        now,
        rand::random(),
    );
    if start {
        hunt.start(entry.state.current(), now);
    }
    hunt
}

fn strategy(s: sihai_config::HuntStrategy) -> Strategy {
    use sihai_config::HuntStrategy as H;
    match s {
        H::Sequential => Strategy::Sequential,
        H::RoundRobin => Strategy::RoundRobin,
        H::Random => Strategy::Random,
        H::Simultaneous => Strategy::Simultaneous,
        H::Weighted => Strategy::Weighted,
        H::LongestIdle => Strategy::LongestIdle,
    }
}
