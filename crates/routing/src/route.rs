//! The decision for one call: which group to hunt, or which final response to send and
//! why. Steps run in the order an operator reads a trace: who sent it (trunk), what was
//! dialled (number, status), who is calling (anonymous, lists, blocked regions), when
//! (schedule), and from where (region rules).

use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sihai_region::RegionTable;

use sihai_config::AnnouncementCase;

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

impl RejectKind {
    /// The announcement that may explain this refusal to the caller. Calls that are no
    /// enterprise's (an untrusted source, an unknown number) never get one.
    pub fn announcement(self) -> Option<AnnouncementCase> {
        match self {
            RejectKind::UntrustedSource | RejectKind::UnknownNumber => None,
            RejectKind::Suspended => Some(AnnouncementCase::Suspended),
            RejectKind::Anonymous
            | RejectKind::Blacklisted
            | RejectKind::NotWhitelisted
            | RejectKind::BlockedRegion => Some(AnnouncementCase::Refused),
            RejectKind::AfterHours => Some(AnnouncementCase::AfterHours),
        }
    }
}

/// Refuse the call with `status`.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub kind: RejectKind,
    pub status: u16,
    pub reason: &'static str,
    /// Known once the number resolved (for the CDR and the alert).
    pub number: Option<Arc<NumberEntry>>,
    /// The trunk the call came in on, once the source was recognised.
    pub trunk: Option<Arc<Trunk>>,
    pub caller: Caller,
    pub region: Option<CallerRegion>,
}

impl Rejection {
    /// Whether the enterprise gets a missed-call alert for it (after hours: a customer
    /// tried to reach them). Screened callers are refused on purpose and do not alert.
    pub fn alerts(&self) -> bool {
        self.kind == RejectKind::AfterHours
    }

    /// The `[[prompt]]` to play before the refusal, if the number has one for its case.
    pub fn announcement(&self) -> Option<&str> {
        let case = self.kind.announcement()?;
        self.number.as_ref()?.announcements.get(case)
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
    let trunk = table.trunk_for(request.source);
    let reject = |kind, status, reason, number: Option<&Arc<NumberEntry>>| {
        Decision::Reject(Rejection {
            kind,
            status,
            reason,
            number: number.cloned(),
            trunk: trunk.cloned(),
            caller: caller.clone(),
            region: region.clone(),
        })
    };

    let Some(trunk) = trunk else {
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
            // RFC 5079 defines 433 for exactly this, and 3GPP's anonymous communication
            // rejection (TS 24.611), which carriers' IMS networks run, sends it too; a
            // peer that does not know it treats it as 400 (RFC 3261 §8.1.3.2), still a
            // refusal. The other screening refusals are 603 Decline.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RoutingTable;
    use sihai_config::Config;

    const CONFIG: &str = r#"
[sip]
[[sip.listen]]
transport = "udp"
address = "127.0.0.1:5060"
[[trunk]]
name = "lab"
sources = ["192.0.2.0/24"]
gateway = "sip:{number}@127.0.0.1:5080"
[[enterprise]]
id = "acme"
name = "Acme"
[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "open"
[[number]]
number = "4000000001"
enterprise = "acme"
status = "suspended"
plan = "open"
[[number]]
number = "4000000002"
enterprise = "acme"
status = "active"
plan = "strict"
[[number]]
number = "4000000003"
enterprise = "acme"
status = "active"
plan = "closed"
[[plan]]
name = "open"
enterprise = "acme"
group = "sales"
blacklist = ["13900000000", "170*"]
regions = [{ provinces = ["北京"], group = "beijing" }, { cities = ["上海"], group = "shanghai" }]
[[plan]]
name = "strict"
enterprise = "acme"
group = "sales"
whitelist = ["13800138000", "021*"]
block_provinces = ["广东省"]
reject_anonymous = true
[[plan]]
name = "closed"
enterprise = "acme"
group = "sales"
schedule = "never"
[[schedule]]
name = "never"
[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000001" }]
[[group]]
name = "beijing"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000002" }]
[[group]]
name = "shanghai"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000003" }]
"#;

    fn decide(dialled: &str, caller: &str, privacy: bool) -> Decision {
        let config = Config::from_str(CONFIG, "test.toml").expect("test config");
        let table = RoutingTable::compile(&config);
        let request = CallRequest {
            source: [192, 0, 2, 7].into(),
            dialled,
            caller,
            privacy,
        };
        route(
            &table,
            RegionTable::embedded(),
            &request,
            Timestamp::now(),
            &crate::schedule::china_time_zone(),
        )
    }

    fn status(d: &Decision) -> Option<u16> {
        match d {
            Decision::Reject(r) => Some(r.status),
            Decision::Route(_) => None,
        }
    }

    fn group(d: &Decision) -> &str {
        match d {
            Decision::Route(r) => &r.group.name,
            Decision::Reject(r) => panic!("rejected with {}", r.status),
        }
    }

    #[test]
    fn source_number_and_status() {
        let config = Config::from_str(CONFIG, "test.toml").unwrap();
        let table = RoutingTable::compile(&config);
        let stranger = CallRequest {
            source: [198, 51, 100, 1].into(),
            dialled: "4001234567",
            caller: "13800138000",
            privacy: false,
        };
        let d = route(
            &table,
            RegionTable::embedded(),
            &stranger,
            Timestamp::now(),
            &crate::schedule::china_time_zone(),
        );
        assert_eq!(status(&d), Some(403));
        assert_eq!(
            status(&decide("4009999999", "13800138000", false)),
            Some(404)
        );
        assert_eq!(
            status(&decide("4000000001", "13800138000", false)),
            Some(480),
            "suspended"
        );
        for dialled in [
            "4001234567",
            "+864001234567",
            "864001234567",
            "004001234567",
            "400-123-4567",
        ] {
            assert_eq!(
                status(&decide(dialled, "13800138000", false)),
                None,
                "{dialled}"
            );
        }
    }

    #[test]
    fn lists_regions_and_anonymity() {
        assert_eq!(
            status(&decide("4001234567", "13900000000", false)),
            Some(603),
            "blacklisted exactly"
        );
        assert_eq!(
            status(&decide("4001234567", "+8617012345678", false)),
            Some(603),
            "blacklisted by prefix"
        );
        assert_eq!(
            group(&decide("4001234567", "13800138000", false)),
            "beijing",
            "Beijing mobile"
        );
        assert_eq!(
            group(&decide("4001234567", "02112345678", false)),
            "shanghai",
            "Shanghai landline"
        );
        assert_eq!(
            group(&decide("4001234567", "075512345678", false)),
            "sales",
            "no rule for Shenzhen"
        );
        assert_eq!(
            group(&decide("4001234567", "anonymous", false)),
            "sales",
            "anonymous allowed here"
        );

        assert_eq!(
            status(&decide("4000000002", "13800138000", false)),
            None,
            "whitelisted"
        );
        assert_eq!(
            status(&decide("4000000002", "02187654321", false)),
            None,
            "whitelisted by prefix"
        );
        assert_eq!(
            status(&decide("4000000002", "13900000009", false)),
            Some(603),
            "not on the whitelist"
        );
        assert_eq!(
            status(&decide("4000000002", "13800138000", true)),
            Some(433),
            "Privacy: id on a plan refusing anonymity"
        );
        match decide("4000000002", "13900000009", false) {
            Decision::Reject(r) => assert_eq!(r.kind, RejectKind::NotWhitelisted),
            Decision::Route(_) => panic!("routed"),
        }
    }

    #[test]
    fn blocked_provinces_apply_after_the_whitelist() {
        // A whitelisted number from a blocked province is still refused.
        let config = CONFIG.replace(
            "whitelist = [\"13800138000\", \"021*\"]",
            "whitelist = [\"075512345678\"]",
        );
        let config = Config::from_str(&config, "test.toml").unwrap();
        let table = RoutingTable::compile(&config);
        let request = CallRequest {
            source: [192, 0, 2, 7].into(),
            dialled: "4000000002",
            caller: "075512345678",
            privacy: false,
        };
        let d = route(
            &table,
            RegionTable::embedded(),
            &request,
            Timestamp::now(),
            &crate::schedule::china_time_zone(),
        );
        match d {
            Decision::Reject(r) => {
                assert_eq!((r.kind, r.status), (RejectKind::BlockedRegion, 603));
                assert_eq!(r.region.map(|g| g.province), Some("广东".to_string()));
            }
            Decision::Route(_) => panic!("routed from a blocked province"),
        }
    }

    #[test]
    fn refusals_name_their_numbers_announcement_but_strangers_get_none() {
        let config = CONFIG.replace(
            "name = \"strict\"\n",
            "name = \"strict\"\nannouncements = { refused = \"go-away\", suspended = \"closed\" }\n",
        )
        .replace(
            "status = \"suspended\"\n",
            "status = \"suspended\"\nannouncements = { suspended = \"closed\" }\n",
        ) + "[[prompt]]\nname = \"go-away\"\nfile = \"go-away.wav\"\n\
             [[prompt]]\nname = \"closed\"\nfile = \"closed.wav\"\n";
        let config = Config::from_str(&config, "test.toml").unwrap();
        let table = RoutingTable::compile(&config);
        let decide = |source: [u8; 4], dialled, caller| {
            let request = CallRequest {
                source: source.into(),
                dialled,
                caller,
                privacy: false,
            };
            match route(
                &table,
                RegionTable::embedded(),
                &request,
                Timestamp::now(),
                &crate::schedule::china_time_zone(),
            ) {
                Decision::Reject(r) => r,
                Decision::Route(_) => panic!("routed"),
            }
        };
        let refused = decide([192, 0, 2, 7], "4000000002", "13900000009");
        assert_eq!(refused.kind, RejectKind::NotWhitelisted);
        assert_eq!(refused.announcement(), Some("go-away"));
        assert!(refused.trunk.is_some());
        // The suspended number's plan ("open") has none: the number's own plays.
        assert_eq!(
            decide([192, 0, 2, 7], "4000000001", "13800138000").announcement(),
            Some("closed")
        );
        // Other numbers on "open" have none.
        assert_eq!(
            decide([192, 0, 2, 7], "4001234567", "13900000000").announcement(),
            None
        );
        assert_eq!(
            decide([192, 0, 2, 7], "4009999999", "13800138000").announcement(),
            None
        );
        let stranger = decide([198, 51, 100, 1], "4000000002", "13900000009");
        assert_eq!((stranger.status, stranger.announcement()), (403, None));
        assert_eq!(RejectKind::UnknownNumber.announcement(), None);
        assert_eq!(
            RejectKind::Suspended.announcement(),
            Some(AnnouncementCase::Suspended)
        );
        assert_eq!(
            RejectKind::BlockedRegion.announcement(),
            Some(AnnouncementCase::Refused)
        );
    }

    #[test]
    fn after_hours_without_a_group_is_refused_and_alerts() {
        match decide("4000000003", "13800138000", false) {
            Decision::Reject(r) => {
                assert_eq!((r.kind, r.status), (RejectKind::AfterHours, 480));
                assert!(r.alerts());
            }
            Decision::Route(_) => panic!("routed while closed"),
        }
        match decide("4001234567", "13900000000", false) {
            Decision::Reject(r) => assert!(!r.alerts(), "screened callers raise no alert"),
            Decision::Route(_) => panic!(),
        }
    }
}
