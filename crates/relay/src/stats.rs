//! Counters of what the relay did with a call's packets, for the CDR, the metrics
//! endpoint and for an engineer asking "why is there no audio?" (the usual answers:
//! nothing ever arrived, it came from the wrong address, or there was nowhere to
//! send it).

use std::net::SocketAddr;

/// What happened on one leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// RTP packets accepted from the leg's peer (after latching).
    pub packets_in: u64,
    /// Bytes of those packets.
    pub bytes_in: u64,
    /// Packets queued for the leg's peer (forwarded or generated).
    pub packets_out: u64,
    /// Bytes of those packets.
    pub bytes_out: u64,
    /// RTCP packets received (consumed, never forwarded).
    pub rtcp_in: u64,
    /// Datagrams on the leg's RTP port that are not RTP, and telephone-events
    /// too short to read.
    pub malformed: u64,
    /// RTP packets from a source other than the latched one (see latching).
    pub dropped_wrong_source: u64,
    /// RTP packets with a payload type the leg did not negotiate (comfort noise,
    /// a codec we never offered).
    pub dropped_payload_type: u64,
    /// Packets from this leg not forwarded because they were sent before a switch
    /// or belong to an unconfirmed sequence jump.
    pub dropped_out_of_sequence: u64,
    /// Packets for this leg dropped because it has no address yet (no SDP address
    /// and no packet received), or no phone is set.
    pub dropped_no_destination: u64,
    /// Telephone-events for this leg dropped because it did not negotiate
    /// telephone-event.
    pub dropped_no_telephone_event: u64,
    /// Times the leg's source moved to a new address after two silent seconds.
    pub relatched: u64,
    /// DTMF key presses detected from this leg.
    pub dtmf_keys: u64,
    /// The address the leg's packets come from and go to, once latched.
    pub latched: Option<SocketAddr>,
}

impl LegStats {
    /// Every packet from or for this leg the relay dropped, for any reason.
    pub fn dropped(&self) -> u64 {
        self.malformed
            + self.dropped_wrong_source
            + self.dropped_payload_type
            + self.dropped_out_of_sequence
            + self.dropped_no_destination
            + self.dropped_no_telephone_event
    }
}

/// What happened on a call's media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// The caller's leg.
    pub caller: LegStats,
    /// The phone's leg, across every phone set on the call.
    pub phone: LegStats,
    /// Datagrams handed in for a port that belongs to neither leg (a straggler from a
    /// replaced phone, or a daemon bug).
    pub unknown_port: u64,
    /// Packets dropped because the daemon did not collect transmits fast enough.
    pub dropped_transmit_queue_full: u64,
    /// Events dropped because the daemon did not collect them.
    pub dropped_events: u64,
    /// Recorded frames dropped (not collected in time, or a stalled clock skipped).
    pub dropped_recorded_frames: u64,
}

impl MediaStats {
    /// Every packet the relay dropped.
    pub fn dropped(&self) -> u64 {
        self.caller.dropped()
            + self.phone.dropped()
            + self.unknown_port
            + self.dropped_transmit_queue_full
    }

    /// DTMF key presses detected on either leg.
    pub fn dtmf_keys(&self) -> u64 {
        self.caller.dtmf_keys + self.phone.dtmf_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_every_drop_reason() {
        let leg = LegStats {
            malformed: 1,
            dropped_wrong_source: 2,
            dropped_payload_type: 4,
            dropped_out_of_sequence: 8,
            dropped_no_destination: 16,
            dropped_no_telephone_event: 32,
            packets_in: 1000,
            rtcp_in: 1000,
            dtmf_keys: 3,
            ..LegStats::default()
        };
        assert_eq!(leg.dropped(), 63);
        let stats = MediaStats {
            caller: leg,
            phone: LegStats {
                dtmf_keys: 1,
                malformed: 64,
                ..LegStats::default()
            },
            unknown_port: 128,
            dropped_transmit_queue_full: 256,
            dropped_events: 9,
            dropped_recorded_frames: 9,
        };
        assert_eq!(stats.dropped(), 511);
        assert_eq!(stats.dtmf_keys(), 4);
    }
}
