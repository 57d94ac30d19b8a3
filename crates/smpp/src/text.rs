//! Chinese text as UCS-2 (`data_coding` 0x08, sent as UTF-16BE) and its split into the
//! parts of a concatenated message (3GPP TS 23.040 §9.2.3.24.1: a UDH with IEI 0x00,
//! an 8-bit reference, the number of parts and this part's index).

use crate::error::TextError;

/// 140 octets of user data hold 70 UTF-16 code units.
pub const SINGLE_PART_UNITS: usize = 70;
/// The 6-octet UDH leaves 134 octets: 67 code units per part.
pub const CONCATENATED_PART_UNITS: usize = 67;
/// UDH length 5, IEI 0x00 (concatenated, 8-bit reference), IE length 3.
const UDH_PREFIX: [u8; 3] = [0x05, 0x00, 0x03];

/// One submit_sm's short_message and whether it starts with a UDH (esm_class 0x40).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub short_message: Vec<u8>,
    pub has_udh: bool,
}

/// Splits `text` into submit_sm parts. A text of at most 70 code units goes as one part
/// without a UDH; a longer one in parts of at most 67 code units, each with a UDH carrying
/// `reference`. A part never ends between the two halves of a surrogate pair (a
/// character outside the BMP, e.g. an emoji or a rare CJK Extension B name character),
/// so each part decodes on its own on the handset.
pub fn split_ucs2(text: &str, reference: u8) -> Result<Vec<Part>, TextError> {
    let units: Vec<u16> = text.encode_utf16().collect();
    if units.is_empty() {
        return Err(TextError::Empty);
    }
    if units.len() <= SINGLE_PART_UNITS {
        return Ok(vec![Part {
            short_message: to_be_bytes(&units),
            has_udh: false,
        }]);
    }
    let mut chunks: Vec<&[u16]> = Vec::new();
    let mut rest = units.as_slice();
    while !rest.is_empty() {
        let mut cut = rest.len().min(CONCATENATED_PART_UNITS);
        // The unit before the cut is a high surrogate: its low half would start the next
        // part. Valid UTF-16 (from a &str) has a low surrogate after it, so cut is >= 2.
        if cut < rest.len() && is_high_surrogate(rest[cut - 1]) {
            cut -= 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    let total = chunks.len();
    let Ok(total_octet) = u8::try_from(total) else {
        return Err(TextError::TooManyParts { parts: total });
    };
    Ok(chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut short_message = Vec::with_capacity(6 + chunk.len() * 2);
            short_message.extend_from_slice(&UDH_PREFIX);
            // Indices start at 1 and total <= 255, so index + 1 fits in a u8.
            short_message.extend_from_slice(&[reference, total_octet, (index + 1) as u8]);
            short_message.extend_from_slice(&to_be_bytes(chunk));
            Part {
                short_message,
                has_udh: true,
            }
        })
        .collect())
}

fn is_high_surrogate(unit: u16) -> bool {
    (0xD800..0xDC00).contains(&unit)
}

fn to_be_bytes(units: &[u16]) -> Vec<u8> {
    units.iter().flat_map(|unit| unit.to_be_bytes()).collect()
}

/// The text of a UCS-2 short_message (UDH skipped when `has_udh`): for tests and logs.
/// `None` when the octets are not whole UTF-16BE.
pub fn decode_ucs2(short_message: &[u8], has_udh: bool) -> Option<String> {
    let payload = if has_udh {
        let udh_length = *short_message.first()? as usize;
        short_message.get(udh_length + 1..)?
    } else {
        short_message
    };
    if payload.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = payload
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_chinese_text_is_one_part_without_udh() {
        let parts = split_ucs2("您有一个未接来电", 7).expect("splits");
        assert_eq!(parts.len(), 1);
        assert!(!parts[0].has_udh);
        assert_eq!(&parts[0].short_message[..4], &[0x60, 0xA8, 0x67, 0x09]);
        assert_eq!(
            decode_ucs2(&parts[0].short_message, false).as_deref(),
            Some("您有一个未接来电")
        );
    }

    #[test]
    fn seventy_units_fit_one_part_and_seventy_one_need_two() {
        let seventy = "话".repeat(70);
        assert_eq!(split_ucs2(&seventy, 1).expect("splits").len(), 1);
        let parts = split_ucs2(&"话".repeat(71), 9).expect("splits");
        assert_eq!(parts.len(), 2);
        assert_eq!(&parts[0].short_message[..6], &[5, 0, 3, 9, 2, 1]);
        assert_eq!(&parts[1].short_message[..6], &[5, 0, 3, 9, 2, 2]);
        assert_eq!(parts[0].short_message.len(), 6 + 67 * 2);
        assert_eq!(parts[1].short_message.len(), 6 + 4 * 2);
        let joined: String = parts
            .iter()
            .map(|part| decode_ucs2(&part.short_message, true).expect("utf-16"))
            .collect();
        assert_eq!(joined, "话".repeat(71));
    }

    #[test]
    fn a_surrogate_pair_is_never_split_across_parts() {
        // 66 BMP characters then 𠀀 (U+20000, two units): the pair would straddle the
        // 67-unit boundary, so the first part holds 66 units.
        let text = format!("{}𠀀{}", "字".repeat(66), "字".repeat(10));
        let parts = split_ucs2(&text, 3).expect("splits");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].short_message.len(), 6 + 66 * 2);
        let first = decode_ucs2(&parts[0].short_message, true).expect("whole");
        let second = decode_ucs2(&parts[1].short_message, true).expect("whole");
        assert_eq!(first, "字".repeat(66));
        assert!(second.starts_with('𠀀'));
    }

    #[test]
    fn an_empty_text_and_a_text_over_255_parts_are_refused() {
        assert_eq!(split_ucs2("", 0), Err(TextError::Empty));
        let huge = "长".repeat(67 * 255 + 1);
        assert_eq!(
            split_ucs2(&huge, 0),
            Err(TextError::TooManyParts { parts: 256 })
        );
        assert_eq!(
            split_ucs2(&"长".repeat(67 * 255), 0).expect("fits").len(),
            255
        );
    }
}
