//! SMSC delivery receipts: the de-facto format of SMPP 3.4 Appendix B in the
//! short_message of a deliver_sm, `id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm
//! done date:YYMMDDhhmm stat:DDDDDDD err:E text:...`, with the receipted_message_id and
//! message_state TLVs (§5.3.2.12, §5.3.2.35) preferred when an SMSC sends them, since
//! some SMSCs print the id in decimal in the text and in hex in the TLV.

use crate::pdu::{ShortMessage, tlv_tag};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Accepted,
    Unknown,
    Rejected,
    Enroute,
    /// A word outside Appendix B, kept for the record.
    Other(String),
}

impl DeliveryState {
    fn from_stat(word: &str) -> DeliveryState {
        match word.to_ascii_uppercase().as_str() {
            "DELIVRD" => DeliveryState::Delivered,
            "EXPIRED" => DeliveryState::Expired,
            "DELETED" => DeliveryState::Deleted,
            "UNDELIV" => DeliveryState::Undeliverable,
            "ACCEPTD" => DeliveryState::Accepted,
            "UNKNOWN" => DeliveryState::Unknown,
            "REJECTD" => DeliveryState::Rejected,
            "ENROUTE" => DeliveryState::Enroute,
            _ => DeliveryState::Other(word.to_string()),
        }
    }

    /// message_state values of §5.2.28.
    fn from_message_state(value: u8) -> DeliveryState {
        match value {
            1 => DeliveryState::Enroute,
            2 => DeliveryState::Delivered,
            3 => DeliveryState::Expired,
            4 => DeliveryState::Deleted,
            5 => DeliveryState::Undeliverable,
            6 => DeliveryState::Accepted,
            7 => DeliveryState::Unknown,
            8 => DeliveryState::Rejected,
            other => DeliveryState::Other(format!("message_state {other}")),
        }
    }

    /// Whether the SMSC is done with the message (no later receipt will change it).
    pub fn is_final(&self) -> bool {
        !matches!(self, DeliveryState::Enroute | DeliveryState::Accepted)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The message_id the SMSC returned in submit_sm_resp.
    pub message_id: String,
    pub state: DeliveryState,
    /// The `err:` field: a network-specific error code, "000" on success.
    pub error_code: Option<String>,
    pub submit_date: Option<String>,
    pub done_date: Option<String>,
}

/// Reads a receipt from a deliver_sm; `None` when it has neither an `id:` and `stat:`
/// in its text nor the two TLVs.
pub fn parse_receipt(message: &ShortMessage) -> Option<DeliveryReceipt> {
    let text = String::from_utf8_lossy(&message.short_message);
    let tlv_id = message
        .tlv(tlv_tag::RECEIPTED_MESSAGE_ID)
        .and_then(|value| std::str::from_utf8(value).ok())
        .map(|id| id.trim_end_matches('\0').to_string())
        .filter(|id| !id.is_empty());
    let tlv_state = message
        .tlv(tlv_tag::MESSAGE_STATE)
        .and_then(|value| value.first().copied())
        .map(DeliveryState::from_message_state);
    let message_id = tlv_id.or_else(|| field(&text, "id:"))?;
    let state =
        tlv_state.or_else(|| field(&text, "stat:").map(|w| DeliveryState::from_stat(&w)))?;
    Some(DeliveryReceipt {
        message_id,
        state,
        error_code: field(&text, "err:"),
        submit_date: field(&text, "submit date:"),
        done_date: field(&text, "done date:"),
    })
}

/// The word after `key` (matched case-insensitively, at the start or after a space), up
/// to the next space.
fn field(text: &str, key: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower.get(from..)?.find(key) {
        let start = from + found;
        let at_word_start = start == 0 || lower.as_bytes().get(start - 1) == Some(&b' ');
        if at_word_start {
            let value_start = start + key.len();
            let value = text.get(value_start..)?;
            let word = value.split(' ').next().unwrap_or_default();
            return Some(word.to_string());
        }
        from = start + key.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::Tlv;

    fn receipt_text(text: &str) -> ShortMessage {
        ShortMessage {
            esm_class: crate::pdu::esm_class::DELIVERY_RECEIPT,
            short_message: text.as_bytes().to_vec(),
            ..ShortMessage::default()
        }
    }

    #[test]
    fn appendix_b_text_is_read_field_by_field() {
        let message = receipt_text(
            "id:0123456789 sub:001 dlvrd:001 submit date:2405061230 done date:2405061231 stat:DELIVRD err:000 text:您有",
        );
        let receipt = parse_receipt(&message).expect("a receipt");
        assert_eq!(receipt.message_id, "0123456789");
        assert_eq!(receipt.state, DeliveryState::Delivered);
        assert!(receipt.state.is_final());
        assert_eq!(receipt.error_code.as_deref(), Some("000"));
        assert_eq!(receipt.submit_date.as_deref(), Some("2405061230"));
        assert_eq!(receipt.done_date.as_deref(), Some("2405061231"));
    }

    #[test]
    fn undeliverable_and_unknown_words_are_kept() {
        let receipt = parse_receipt(&receipt_text("id:ab12 stat:UNDELIV err:012")).expect("r");
        assert_eq!(receipt.state, DeliveryState::Undeliverable);
        let receipt = parse_receipt(&receipt_text("ID:ab12 STAT:WEIRD")).expect("r");
        assert_eq!(receipt.message_id, "ab12");
        assert_eq!(receipt.state, DeliveryState::Other("WEIRD".to_string()));
        assert!(!DeliveryState::Enroute.is_final());
    }

    #[test]
    fn the_tlvs_win_over_the_text() {
        let mut message = receipt_text("id:12345 stat:ENROUTE");
        message.tlvs = vec![
            Tlv {
                tag: tlv_tag::RECEIPTED_MESSAGE_ID,
                value: b"3039\0".to_vec(),
            },
            Tlv {
                tag: tlv_tag::MESSAGE_STATE,
                value: vec![2],
            },
        ];
        let receipt = parse_receipt(&message).expect("a receipt");
        assert_eq!(receipt.message_id, "3039");
        assert_eq!(receipt.state, DeliveryState::Delivered);
    }

    #[test]
    fn a_message_that_is_not_a_receipt_gives_none() {
        assert_eq!(parse_receipt(&receipt_text("hello")), None);
        assert_eq!(parse_receipt(&receipt_text("grid:1 stat:DELIVRD")), None);
    }
}
