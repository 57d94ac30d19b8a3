//! Ending a call: releasing what it held (relay ports, indexes, its place in the
//! number's limits, the answering phone's channel), assembling its CDR and, when
//! nobody answered, the missed-call alert; and the record of a call refused before any
//! phone rang.

use std::time::Instant;

use jiff::Timestamp;
use sihai_hunt::Hunt;
use sihai_records::{Cdr, HangupSide, NewAlert, Outcome, PhoneAttempt, json_string};
use sihai_routing::Caller;
use sihai_routing::route::CallerRegion;
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_transaction::TransactionLayer;
use tracing::info;

use super::call::CallId;
use super::groups::with_group_state;
use super::relay::take_recorded;
use super::wire::new_token;
use super::{B2bua, ClientPurpose};

impl B2bua {
    /// A finished call's record, and the missed-call alert that goes with it.
    pub fn poll_record(&mut self) -> Option<(Cdr, Option<NewAlert>)> {
        self.records.pop_front()
    }

    pub(super) fn finish_if_done(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let hunting_over = call.hunt.result().is_some();
        // An announcement ends the call itself once it has played.
        let unanswered_and_final = call.answered_leg.is_none()
            && call.inbound_final_sent
            && hunting_over
            && call.announcement.is_none();
        if unanswered_and_final {
            self.end_call(tx, id, now, wall);
        }
    }

    pub(super) fn end_call(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(mut call) = self.calls.remove(&id) else {
            return;
        };
        if let (Some(name), Some(anchor)) = (&call.recording, call.anchor.as_mut()) {
            // The last frames the relay tapped go before the end of the file.
            take_recorded(anchor, name, &mut self.recorded);
        }
        if let (Some(plane), Some(anchor)) = (self.media.as_mut(), call.anchor.take()) {
            plane.release(&anchor);
        }
        if let Some(key) = call.inbound_key.take() {
            self.by_server_key.remove(&key);
        }
        self.inbound_invites.remove(&call.inbound_identity);
        if let Some(d) = &call.inbound_dialog {
            self.by_dialog
                .remove(&(d.call_id.clone(), d.local_tag.clone()));
        }
        for leg in &call.legs {
            if let Some(d) = &leg.dialog {
                self.by_dialog
                    .remove(&(d.call_id.clone(), d.local_tag.clone()));
            }
            if let Some(k) = &leg.key
                && let Some(invite) = &leg.invite
                && self.by_client_key.contains_key(k)
            {
                // Its INVITE transaction is still open: a late 2xx must be ACKed and hung up.
                self.by_client_key.insert(
                    k.clone(),
                    ClientPurpose::Orphan {
                        invite: Box::new(invite.clone()),
                        destination: leg.destination,
                        cancel_deferred: leg.cancel_deferred,
                    },
                );
            }
        }
        for key in call.relays.drain(..) {
            if let Some(ClientPurpose::Relay {
                original, request, ..
            }) = self.by_client_key.remove(&key)
            {
                let resp =
                    MessageBuilder::response_to(&request, 481, reason_phrase(481), None).build();
                let _ = tx.respond(now, &original, resp);
            }
        }
        if call.admitted
            && let Some(limits) = self.limits.get_mut(&call.route.number.number)
        {
            limits.release();
        }
        if call.answered_leg.is_some() {
            self.talking = self.talking.saturating_sub(1);
        }
        if let Some(i) = call.answered_leg
            && let Some(leg) = call.legs.get(i)
        {
            with_group_state(&mut self.groups, &call.route.group, |state| {
                Hunt::release(state, leg.phone, now)
            });
        }
        let talk_seconds = call
            .answered_instant
            .map_or(0, |at| now.saturating_duration_since(at).as_secs() as u32);
        let outcome = if call.answered_leg.is_some() {
            // A call cut off when its money ran out says so; any other answered call
            // is answered, however it ended.
            if call.outcome == Some(Outcome::OutOfCredit) {
                Outcome::OutOfCredit
            } else {
                Outcome::Answered
            }
        } else {
            call.outcome.unwrap_or(Outcome::Failed)
        };
        let rung = call.legs.iter().map(|l| PhoneAttempt {
            phone: l.label.clone(),
            result: l.result.clone().unwrap_or_else(|| "no_answer".into()),
        });
        // Phones passed over because all their channels were taken count as tried too:
        // per-phone analytics should show that the phone was busy, not idle.
        let skipped = call
            .hunt
            .skipped()
            .iter()
            .filter_map(|&i| call.route.group.phones.get(i))
            .map(|p| PhoneAttempt {
                phone: p.label().to_string(),
                result: "at_capacity".into(),
            });
        let attempts = rung.chain(skipped).collect();
        let settlement = call.billing.as_mut().map(|billing| billing.settle(wall));
        if settlement.is_some() {
            self.billed.remove(&call.record_id);
        }
        let (hangup_side, hangup_cause) = call
            .hangup
            .take()
            .map_or((None, None), |(s, c)| (Some(s), Some(c)));
        let cdr = Cdr {
            call_id: call.record_id.clone(),
            number: call.route.number.number.clone(),
            enterprise: call.route.number.enterprise.id.clone(),
            caller: call.route.caller.as_str().to_string(),
            caller_province: call.route.region.as_ref().map(|r| r.province.clone()),
            caller_city: call.route.region.as_ref().map(|r| r.city.clone()),
            answered_by: call
                .answered_leg
                .and_then(|i| call.legs.get(i))
                .map(|l| l.label.clone()),
            attempts,
            setup_at: call.setup_at,
            ring_at: call.ring_at,
            answer_at: call.answer_at,
            end_at: wall,
            talk_seconds,
            outcome,
            hangup_side,
            hangup_cause,
            recording: call.recording.as_deref().map(str::to_owned),
            menu_path: call.menu.as_ref().map(|m| m.walk.path().to_owned()),
            announcement: call.announcement.as_ref().map(|a| a.name.clone()),
            billed_seconds: settlement.as_ref().map_or(0, |s| s.billed_seconds),
            cost: settlement.as_ref().map(|s| s.cost),
            tariff: settlement.map(|s| s.tariff),
            customer_id: call
                .caller_identity
                .as_ref()
                .and_then(|who| who.customer_id())
                .map(str::to_owned),
        };
        if let Some(name) = call.recording.take() {
            self.recorded
                .push_back(crate::media::RecordingOutput::Finished { name });
        }
        let alert = if outcome == Outcome::Answered || !call.alerts_missed {
            None
        } else {
            missed_call_alert(&cdr, &call.route.number.enterprise)
        };
        info!(
            call = id,
            outcome = outcome.as_str(),
            talk_seconds,
            "call ended"
        );
        self.records.push_back((cdr, alert));
    }
}

/// The record of a call refused before any phone rang.
pub(super) fn refused_cdr(
    number: String,
    enterprise: String,
    caller: &Caller,
    region: Option<&CallerRegion>,
    outcome: Outcome,
    cause: String,
    wall: Timestamp,
) -> Cdr {
    Cdr {
        call_id: format!("{}-r", new_token()),
        number,
        enterprise,
        caller: caller.as_str().to_string(),
        caller_province: region.map(|r| r.province.clone()),
        caller_city: region.map(|r| r.city.clone()),
        answered_by: None,
        attempts: Vec::new(),
        setup_at: wall,
        ring_at: None,
        answer_at: None,
        end_at: wall,
        talk_seconds: 0,
        outcome,
        hangup_side: Some(HangupSide::System),
        hangup_cause: Some(cause),
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: 0,
        cost: None,
        tariff: None,
        customer_id: None,
    }
}

/// The JSON webhook body for a missed call, if the enterprise has a webhook.
pub(super) fn missed_call_alert(
    cdr: &Cdr,
    enterprise: &sihai_routing::model::Enterprise,
) -> Option<NewAlert> {
    let url = enterprise.alert_webhook.clone()?;
    let payload = format!(
        "{{\"event\":\"missed_call\",\"enterprise\":{},\"number\":{},\"caller\":{},\"time\":{},\"outcome\":{},\"call_id\":{}}}",
        json_string(&enterprise.id),
        json_string(&cdr.number),
        json_string(&cdr.caller),
        json_string(&cdr.setup_at.to_string()),
        json_string(cdr.outcome.as_str()),
        json_string(&cdr.call_id)
    );
    Some(NewAlert {
        enterprise: enterprise.id.clone(),
        url,
        payload,
    })
}
