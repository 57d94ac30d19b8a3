//! The decision for one call: which group to hunt, or which final response to send and
//! why. Steps run in the order an operator reads a trace: who sent it (trunk), what was
//! dialled (number, status), who is calling (anonymous, lists, blocked regions), when
//! (schedule), and from where (region rules).

use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sihai_region::RegionTable;

use crate::model::{Group, NumberEntry, RoutingTable, Trunk};
use crate::number::{Caller, normalise_400, normalise_caller};

/// What the decision needs to know about an incoming INVITE.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    /// Source address of the INVITE (the trunk ACL is by address).
    pub source: IpAddr,
    /// Request-URI user part: the dialled number as the carrier wrote it.
    pub dialled: &'a str,
    /// The caller's number as the carrier wrote it (P-Asserted-Identity or From user).
    pub caller: &'a str,
    /// `Privacy: id` (RFC 3323/3325): the caller asked for its identity to be withheld.
    pub privacy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerRegion {
    pub province: String,
    pub city: String,
}

/// Hunt this group.
#[derive(Debug, Clone)]
pub struct Route {
    pub trunk: Arc<Trunk>,
    pub number: Arc<NumberEntry>,
    pub caller: Caller,
    pub region: Option<CallerRegion>,
    pub group: Arc<Group>,
    /// The call arrived outside the plan's schedule and goes to its after-hours group.
    pub after_hours: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    UntrustedSource,
    UnknownNumber,
    Suspended,
    Anonymous,
    Blacklisted,
    NotWhitelisted,
    BlockedRegion,
    AfterHours,
}

/// Refuse the call with `status`.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub kind: RejectKind,
    pub status: u16,
    pub reason: &'static str,
    /// Known once the number resolved (for the CDR and the alert).
    pub number: Option<Arc<NumberEntry>>,
    pub caller: Caller,
    pub region: Option<CallerRegion>,
}

impl Rejection {
    /// Whether the enterprise gets a missed-call alert for it (after hours: a customer
    /// tried to reach them). Screened callers are refused on purpose and do not alert.
    pub fn alerts(&self) -> bool {
        self.kind == RejectKind::AfterHours
    }
}

#[derive(Debug, Clone)]
pub enum Decision {
    Route(Route),
    Reject(Rejection),
}

pub fn route(
    table: &RoutingTable,
    regions: &RegionTable,
    request: &CallRequest<'_>,
    now: Timestamp,
    zone: &TimeZone,
) -> Decision {
    let caller = if request.privacy {
        Caller::Anonymous
    } else {
        normalise_caller(request.caller)
    };
    let region = caller
        .national()
        .and_then(|n| regions.lookup(n))
        .map(|r| CallerRegion {
            province: r.province.to_string(),
            city: r.city.to_string(),
        });
    let reject = |kind, status, reason, number: Option<&Arc<NumberEntry>>| {
        Decision::Reject(Rejection {
            kind,
            status,
            reason,
            number: number.cloned(),
            caller: caller.clone(),
            region: region.clone(),
        })
    };

    let Some(trunk) = table.trunk_for(request.source) else {
        return reject(RejectKind::UntrustedSource, 403, "Forbidden", None);
    };
    let Some(entry) = normalise_400(request.dialled).and_then(|n| table.numbers.get(&n)) else {
        return reject(RejectKind::UnknownNumber, 404, "Not Found", None);
    };
    if !entry.active {
        return reject(
            RejectKind::Suspended,
            480,
            "Temporarily Unavailable",
            Some(entry),
        );
    }
    let plan = &entry.plan;
    if caller.is_anonymous() {
        if plan.reject_anonymous {
            // RFC 5079.
            return reject(
                RejectKind::Anonymous,
                433,
                "Anonymity Disallowed",
                Some(entry),
            );
        }
    } else {
        if plan.blacklist.contains(caller.as_str()) {
            return reject(RejectKind::Blacklisted, 603, "Decline", Some(entry));
        }
        if !plan.whitelist.is_empty() && !plan.whitelist.contains(caller.as_str()) {
            return reject(RejectKind::NotWhitelisted, 603, "Decline", Some(entry));
        }
    }
    if !plan.whitelist.is_empty() && caller.is_anonymous() {
        return reject(RejectKind::NotWhitelisted, 603, "Decline", Some(entry));
    }
    if let Some(r) = &region
        && (plan.block_provinces.contains(&r.province) || plan.block_cities.contains(&r.city))
    {
        return reject(RejectKind::BlockedRegion, 603, "Decline", Some(entry));
    }
    let open = plan.schedule.as_ref().is_none_or(|s| s.is_open(now, zone));
    if !open {
        return match &plan.after_hours {
            Some(group) => Decision::Route(Route {
                trunk: trunk.clone(),
                number: entry.clone(),
                caller,
                region,
                group: group.clone(),
                after_hours: true,
            }),
            None => reject(
                RejectKind::AfterHours,
                480,
                "Temporarily Unavailable",
                Some(entry),
            ),
        };
    }
    let group = region
        .as_ref()
        .and_then(|r| {
            plan.regions
                .iter()
                .find(|rule| rule.provinces.contains(&r.province) || rule.cities.contains(&r.city))
        })
        .map_or_else(|| plan.group.clone(), |rule| rule.group.clone());
    Decision::Route(Route {
        trunk: trunk.clone(),
        number: entry.clone(),
        caller,
        region,
        group,
        after_hours: false,
    })
}
