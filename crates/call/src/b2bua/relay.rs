//! A call's media on the RTP relay: enabling it, packets in and out, the ports it
//! opens and closes, recording an answered call, and the relay's events (media
//! timeout, DTMF, a prompt's end) passed to the menu, the announcement or a hang-up.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sihai_records::HangupSide;
use sihai_transaction::TransactionLayer;
use tracing::{debug, info};

use crate::media::{Anchor, MediaPlane, MediaSettings, PortEvent};

use super::B2bua;
use super::call::{Call, CallId, Side};

/// Starts recording an answered call when its number records calls.
pub(super) fn start_recording(call: &mut Call, zone: &TimeZone, wall: Timestamp, now: Instant) {
    if !call.route.number.record {
        return;
    }
    let Some(anchor) = call.anchor.as_mut() else {
        return;
    };
    anchor.relay.set_recording(true, now);
    let day = zone.to_datetime(wall).date();
    call.recording = Some(Arc::from(format!(
        "{}/{day}/{}.wav",
        call.route.number.enterprise.id, call.record_id
    )));
}

impl B2bua {
    /// Recorded audio to write, and recordings to close.
    pub fn poll_recording(&mut self) -> Option<crate::media::RecordingOutput> {
        self.recorded.pop_front()
    }

    /// Anchors the media of every call with an SDP offer on the relay.
    pub fn enable_media(&mut self, settings: MediaSettings) -> Result<(), sihai_media::PoolError> {
        self.media = Some(MediaPlane::new(settings)?);
        Ok(())
    }

    /// Port pairs free for new calls, when the relay is on.
    pub fn media_ports_available(&self) -> Option<usize> {
        self.media.as_ref().map(MediaPlane::available)
    }

    /// Packets relayed and dropped by the calls that ended (see
    /// [`MediaPlane::ended_packets`]), when the relay is on.
    pub fn media_packets(&self) -> Option<(u64, u64)> {
        self.media.as_ref().map(MediaPlane::ended_packets)
    }

    /// The relay's port pairs, free and in all, when the relay is on.
    pub fn media_ports(&self) -> Option<(usize, usize)> {
        self.media.as_ref().map(|m| (m.available(), m.capacity()))
    }

    /// A datagram that arrived on relay port `port` from `source`.
    pub fn handle_media(
        &mut self,
        tx: &mut TransactionLayer,
        port: u16,
        source: SocketAddr,
        packet: &[u8],
        now: Instant,
        wall: Timestamp,
    ) {
        let Some(id) = self.media.as_ref().and_then(|m| m.call_of(port)) else {
            return;
        };
        if let Some(anchor) = self.calls.get_mut(&id).and_then(|c| c.anchor.as_mut()) {
            anchor.handle_packet(now, port, source, packet);
        }
        self.after_media(tx, id, now, wall);
    }

    /// RTP to send: from which of our ports, to where.
    pub fn poll_media_transmit(&mut self) -> Option<sihai_relay::MediaTransmit> {
        self.media.as_mut()?.poll_transmit()
    }

    /// Hands a sent packet's buffer back to the relay of the call that owns `from_port`,
    /// so steady-state forwarding allocates nothing.
    pub fn recycle_media(&mut self, from_port: u16, buffer: Vec<u8>) {
        let Some(id) = self.media.as_ref().and_then(|m| m.call_of(from_port)) else {
            return;
        };
        if let Some(anchor) = self.calls.get_mut(&id).and_then(|c| c.anchor.as_mut()) {
            anchor.relay.recycle(buffer);
        }
    }

    /// Relay ports to open or close.
    pub fn poll_port_event(&mut self) -> Option<PortEvent> {
        self.media.as_mut()?.poll_port_event()
    }

    /// Collects what a call's relay produced and acts on its events.
    pub(super) fn after_media(
        &mut self,
        tx: &mut TransactionLayer,
        id: CallId,
        now: Instant,
        wall: Timestamp,
    ) {
        let (Some(plane), Some(call)) = (self.media.as_mut(), self.calls.get_mut(&id)) else {
            return;
        };
        let Some(anchor) = call.anchor.as_mut() else {
            return;
        };
        plane.collect(anchor);
        if let Some(name) = &call.recording {
            take_recorded(anchor, name, &mut self.recorded);
        }
        let mut timed_out = false;
        // For the menu, in order: a key (`Some`) or the end of a prompt (`None`).
        let mut menu_inputs = Vec::new();
        while let Some(event) = anchor.relay.poll_event() {
            match event {
                sihai_relay::MediaEvent::MediaTimeout { leg } => {
                    info!(call = id, %leg, "media timeout");
                    timed_out = true;
                }
                sihai_relay::MediaEvent::Dtmf { key, leg } => {
                    debug!(call = id, %leg, %key, "DTMF");
                    if leg == sihai_relay::Leg::Caller {
                        menu_inputs.push(Some(key));
                    }
                }
                sihai_relay::MediaEvent::PlaybackFinished => menu_inputs.push(None),
            }
        }
        if call.announcement.is_some() {
            // Keys are not for anyone, and a caller silent during a short, bounded
            // announcement is no reason to cut it.
            if menu_inputs.iter().any(Option::is_none) {
                self.announcement_played(tx, id, now, wall);
            } else {
                self.schedule(id);
            }
            return;
        }
        if timed_out && call.answered_leg.is_none() && call.menu.is_some() {
            call.hangup
                .get_or_insert((HangupSide::System, "media_timeout".into()));
            self.abandon_menu_call(tx, id, now, wall);
            self.bye(tx, id, Side::Inbound, now);
            self.end_call(tx, id, now, wall);
            return;
        }
        if let Some(menu) = call.menu.as_mut()
            && !menu.hunting
            && !menu_inputs.is_empty()
        {
            for input in menu_inputs {
                match input {
                    Some(key) => menu.walk.on_digit(key, now),
                    None => {
                        if std::mem::take(&mut menu.playing) {
                            menu.walk.on_prompt_finished(now);
                        }
                    }
                }
            }
            self.run_menu(tx, id, now, wall);
            return;
        }
        if timed_out && call.answered_leg.is_some() {
            call.hangup
                .get_or_insert((HangupSide::System, "media_timeout".into()));
            self.hang_up_other(tx, id, Side::Inbound, now);
            self.bye(tx, id, Side::Inbound, now);
            self.end_call(tx, id, now, wall);
            return;
        }
        self.schedule(id);
    }
}

/// Moves the audio the relay tapped for recording `name` into `out`.
pub(super) fn take_recorded(
    anchor: &mut Anchor,
    name: &Arc<str>,
    out: &mut VecDeque<crate::media::RecordingOutput>,
) {
    while let Some(frame) = anchor.relay.poll_recorded() {
        out.push_back(crate::media::RecordingOutput::Frame {
            name: name.clone(),
            caller: frame.caller,
            phone: frame.phone,
        });
    }
}
