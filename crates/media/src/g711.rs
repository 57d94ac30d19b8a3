//! ITU-T G.711 companding: A-law (PCMA, China's and Europe's PSTN) and µ-law (PCMU,
//! North America, and many SIP phones' first choice).
//!
//! The relay forwards G.711 untouched when both legs use the same law and converts byte
//! by byte when they disagree, so conversion must cost one table lookup per byte. Tones,
//! prompts and recordings go through linear 16-bit PCM, which needs exact encoders and
//! decoders.
//!
//! Everything here is bit-exact with the ITU-T reference (the `g711.c` of ITU-T G.191
//! and Sun's public-domain code it derives from): the decoders are those algorithms
//! evaluated into 256-entry tables, the encoders are those algorithms evaluated into
//! 8 K-entry (A-law, which looks at the top 13 bits) and 16 K-entry (µ-law, top 14 bits)
//! tables, all at compile time. The tests compare every table against the reference
//! algorithms over all 65,536 inputs.

/// The A-law byte for zero signal, sent as comfort silence (after the even-bit
/// inversion A-law uses to keep lines busy with ones).
pub const ALAW_SILENCE: u8 = 0xD5;

/// The µ-law byte for zero signal (positive zero).
pub const ULAW_SILENCE: u8 = 0xFF;

/// A G.711 companding law, as negotiated in SDP (`PCMA/8000` is payload type 8,
/// `PCMU/8000` payload type 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// A-law, G.711 PCMA, static RTP payload type 8.
    Alaw,
    /// µ-law, G.711 PCMU, static RTP payload type 0.
    Ulaw,
}

impl Law {
    /// Both laws, for code that prepares audio for either.
    pub const ALL: [Law; 2] = [Law::Alaw, Law::Ulaw];

    /// Compresses one linear sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Alaw => alaw_encode(sample),
            Law::Ulaw => ulaw_encode(sample),
        }
    }

    /// Expands one byte to a linear sample.
    #[inline]
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            Law::Alaw => alaw_decode(byte),
            Law::Ulaw => ulaw_decode(byte),
        }
    }

    /// Compresses `samples` into `out`, which is cleared first.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        out.clear();
        out.extend(samples.iter().map(|&sample| self.encode(sample)));
    }

    /// Expands `bytes` into `out`, which is cleared first.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        out.clear();
        out.extend(bytes.iter().map(|&byte| self.decode(byte)));
    }

    /// The byte that encodes zero signal in this law.
    #[inline]
    pub fn silence(self) -> u8 {
        match self {
            Law::Alaw => ALAW_SILENCE,
            Law::Ulaw => ULAW_SILENCE,
        }
    }

    /// The static RTP payload type of this law (RFC 3551 §6).
    #[inline]
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Alaw => 8,
            Law::Ulaw => 0,
        }
    }

    /// The law carried by a static RTP payload type, if it is 0 (PCMU) or 8 (PCMA).
    pub fn from_payload_type(payload_type: u8) -> Option<Law> {
        match payload_type {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }

    /// The table converting bytes of this law into bytes of `to`, or `None` when both
    /// laws are the same and the payload can be forwarded untouched.
    pub fn transcode_table(self, to: Law) -> Option<&'static [u8; 256]> {
        match (self, to) {
            (Law::Alaw, Law::Ulaw) => Some(&ALAW_TO_ULAW),
            (Law::Ulaw, Law::Alaw) => Some(&ULAW_TO_ALAW),
            _ => None,
        }
    }
}

/// Compresses a linear 16-bit sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    // The reference encoder looks only at the top 14 bits.
    ULAW_ENCODE[((sample >> 2) as u16 & 0x3FFF) as usize]
}

/// Expands a µ-law byte to a linear 16-bit sample (range −32124..=32124).
#[inline]
pub fn ulaw_decode(byte: u8) -> i16 {
    ULAW_DECODE[byte as usize]
}

/// Compresses a linear 16-bit sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    // The reference encoder looks only at the top 13 bits.
    ALAW_ENCODE[((sample >> 3) as u16 & 0x1FFF) as usize]
}

/// Expands an A-law byte to a linear 16-bit sample (range −32256..=32256).
#[inline]
pub fn alaw_decode(byte: u8) -> i16 {
    ALAW_DECODE[byte as usize]
}

/// Converts a G.711 payload from one law to the other in place, with
/// [`ULAW_TO_ALAW`] or [`ALAW_TO_ULAW`] (or see [`Law::transcode_table`]).
#[inline]
pub fn transcode_in_place(buf: &mut [u8], table: &[u8; 256]) {
    for byte in buf {
        *byte = table[*byte as usize];
    }
}

/// µ-law byte to A-law byte, computed as µ-law decode followed by A-law encode (not
/// the hand-tuned tables of G.711 Table 3/4, which differ from it by one step for a
/// few quiet codes). Decode-then-encode keeps the conversion consistent with the
/// linear paths (tones, prompts, recordings) of this crate.
pub static ULAW_TO_ALAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = reference::alaw_encode(reference::ulaw_decode(byte as u8));
        byte += 1;
    }
    table
};

/// A-law byte to µ-law byte, computed as A-law decode followed by µ-law encode (see
/// [`ULAW_TO_ALAW`] for why not the G.711 tables).
pub static ALAW_TO_ULAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = reference::ulaw_encode(reference::alaw_decode(byte as u8));
        byte += 1;
    }
    table
};

static ULAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = reference::ulaw_decode(byte as u8);
        byte += 1;
    }
    table
};

static ALAW_DECODE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = reference::alaw_decode(byte as u8);
        byte += 1;
    }
    table
};

/// Indexed by the sample's top 14 bits as an unsigned number (two's complement).
static ULAW_ENCODE: [u8; 1 << 14] = {
    let mut table = [0u8; 1 << 14];
    let mut index = 0usize;
    while index < (1 << 14) {
        // Sign-extend the 14-bit index back to a sample with those top bits.
        let sample = ((index as u16) << 2) as i16;
        table[index] = reference::ulaw_encode(sample);
        index += 1;
    }
    table
};

/// Indexed by the sample's top 13 bits as an unsigned number (two's complement).
static ALAW_ENCODE: [u8; 1 << 13] = {
    let mut table = [0u8; 1 << 13];
    let mut index = 0usize;
    while index < (1 << 13) {
        let sample = ((index as u16) << 3) as i16;
        table[index] = reference::alaw_encode(sample);
        index += 1;
    }
    table
};

/// The ITU-T G.191 / Sun `g711.c` algorithms, used to fill the tables at compile time
/// and, in tests, to check them.
pub(crate) mod reference {
    const SIGN_BIT: u8 = 0x80;
    const QUANT_MASK: u8 = 0x0F;
    const SEG_SHIFT: u32 = 4;
    const SEG_MASK: u8 = 0x70;
    /// µ-law bias added before the segment search, in 14-bit units (0x84 >> 2).
    const ULAW_BIAS_14: i32 = 0x84 >> 2;
    const ULAW_BIAS: i32 = 0x84;
    /// µ-law clip level in 14-bit units.
    const ULAW_CLIP_14: i32 = 8159;
    const ULAW_SEGMENT_ENDS: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
    const ALAW_SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

    const fn segment(value: i32, ends: &[i32; 8]) -> usize {
        let mut segment = 0;
        while segment < 8 {
            if value <= ends[segment] {
                return segment;
            }
            segment += 1;
        }
        8
    }

    pub(crate) const fn ulaw_encode(sample: i16) -> u8 {
        let mut value = (sample as i32) >> 2;
        let mask: u8 = if value < 0 {
            value = -value;
            0x7F
        } else {
            0xFF
        };
        if value > ULAW_CLIP_14 {
            value = ULAW_CLIP_14;
        }
        value += ULAW_BIAS_14;
        let segment = segment(value, &ULAW_SEGMENT_ENDS);
        if segment >= 8 {
            0x7F ^ mask
        } else {
            let code =
                ((segment as u8) << SEG_SHIFT) | (((value >> (segment + 1)) as u8) & QUANT_MASK);
            code ^ mask
        }
    }

    pub(crate) const fn ulaw_decode(byte: u8) -> i16 {
        let inverted = !byte;
        let mut magnitude = (((inverted & QUANT_MASK) as i32) << 3) + ULAW_BIAS;
        magnitude <<= ((inverted & SEG_MASK) >> SEG_SHIFT) as u32;
        if inverted & SIGN_BIT != 0 {
            (ULAW_BIAS - magnitude) as i16
        } else {
            (magnitude - ULAW_BIAS) as i16
        }
    }

    pub(crate) const fn alaw_encode(sample: i16) -> u8 {
        let mut value = (sample as i32) >> 3;
        let mask: u8 = if value >= 0 {
            0xD5
        } else {
            value = -value - 1;
            0x55
        };
        let segment = segment(value, &ALAW_SEGMENT_ENDS);
        if segment >= 8 {
            0x7F ^ mask
        } else {
            let shift = if segment < 2 { 1 } else { segment };
            let code = ((segment as u8) << SEG_SHIFT) | (((value >> shift) as u8) & QUANT_MASK);
            code ^ mask
        }
    }

    pub(crate) const fn alaw_decode(byte: u8) -> i16 {
        let toggled = byte ^ 0x55;
        let mut magnitude = ((toggled & QUANT_MASK) as i32) << 4;
        let segment = ((toggled & SEG_MASK) >> SEG_SHIFT) as u32;
        match segment {
            0 => magnitude += 8,
            1 => magnitude += 0x108,
            _ => {
                magnitude += 0x108;
                magnitude <<= segment - 1;
            }
        }
        if toggled & SIGN_BIT != 0 {
            magnitude as i16
        } else {
            -magnitude as i16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_samples() -> impl Iterator<Item = i16> {
        i16::MIN..=i16::MAX
    }

    #[test]
    fn known_vectors() {
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn encode_tables_match_reference_for_every_sample() {
        for sample in all_samples() {
            assert_eq!(
                ulaw_encode(sample),
                reference::ulaw_encode(sample),
                "µ-law {sample}"
            );
            assert_eq!(
                alaw_encode(sample),
                reference::alaw_encode(sample),
                "A-law {sample}"
            );
        }
    }

    #[test]
    fn decode_tables_match_reference_for_every_byte() {
        for byte in 0..=255u8 {
            assert_eq!(ulaw_decode(byte), reference::ulaw_decode(byte));
            assert_eq!(alaw_decode(byte), reference::alaw_decode(byte));
        }
    }

    #[test]
    fn encoding_a_decoded_byte_gives_it_back() {
        for byte in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(byte)), byte, "A-law {byte:#04x}");
            // µ-law has a negative zero (0x7F) that re-encodes as positive zero.
            let expected = if byte == 0x7F { 0xFF } else { byte };
            assert_eq!(
                ulaw_encode(ulaw_decode(byte)),
                expected,
                "µ-law {byte:#04x}"
            );
        }
    }

    #[test]
    fn quantisation_is_monotonic_and_bounded() {
        for law in Law::ALL {
            let mut previous = i16::MIN;
            for sample in all_samples() {
                let quantised = law.decode(law.encode(sample));
                assert!(quantised >= previous, "{law:?} not monotonic at {sample}");
                previous = quantised;
                // Both laws' top segment has 1024-wide steps decoded to their middle;
                // µ-law also clips above 32124.
                let error = (i32::from(quantised) - i32::from(sample)).abs();
                assert!(error <= 644, "{law:?} error {error} at {sample}");
            }
        }
    }

    #[test]
    fn quiet_samples_keep_fine_resolution() {
        for sample in -100i16..=100 {
            assert!((i32::from(ulaw_decode(ulaw_encode(sample))) - i32::from(sample)).abs() <= 7);
            assert!((i32::from(alaw_decode(alaw_encode(sample))) - i32::from(sample)).abs() <= 8);
        }
    }

    #[test]
    fn transcoding_tables_are_decode_then_encode() {
        for byte in 0..=255u8 {
            assert_eq!(ULAW_TO_ALAW[byte as usize], alaw_encode(ulaw_decode(byte)));
            assert_eq!(ALAW_TO_ULAW[byte as usize], ulaw_encode(alaw_decode(byte)));
        }
    }

    #[test]
    fn silence_transcodes_to_silence() {
        assert_eq!(ULAW_TO_ALAW[ULAW_SILENCE as usize], ALAW_SILENCE);
        // A-law has no zero: its silence is +8, which µ-law can represent exactly.
        assert_eq!(ALAW_TO_ULAW[ALAW_SILENCE as usize], 0xFE);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(Law::Alaw.decode(Law::Alaw.silence()), 8);
        assert_eq!(Law::Ulaw.decode(Law::Ulaw.silence()), 0);
    }

    #[test]
    fn transcode_round_trip_stays_close() {
        // Two quantisations in a row can move a sample by one step, never more.
        for byte in 0..=255u8 {
            let back = ALAW_TO_ULAW[ULAW_TO_ALAW[byte as usize] as usize];
            let step = (i32::from(ulaw_decode(byte)) - i32::from(ulaw_decode(back))).abs();
            let magnitude = i32::from(ulaw_decode(byte)).abs();
            assert!(
                step <= magnitude / 8 + 16,
                "µ-law {byte:#04x} -> {back:#04x}"
            );
        }
    }

    #[test]
    fn transcode_in_place_uses_the_table() {
        let mut payload = [0x00, 0x7F, 0x80, 0xFF];
        transcode_in_place(&mut payload, &ULAW_TO_ALAW);
        assert_eq!(payload, [0x2A, 0xD5, 0xAA, 0xD5]);
        let table = Law::Alaw.transcode_table(Law::Ulaw);
        assert_eq!(table, Some(&ALAW_TO_ULAW));
        assert_eq!(Law::Ulaw.transcode_table(Law::Ulaw), None);
    }

    #[test]
    fn payload_types() {
        for law in Law::ALL {
            assert_eq!(Law::from_payload_type(law.payload_type()), Some(law));
        }
        assert_eq!(Law::from_payload_type(18), None);
    }

    #[test]
    fn buffer_helpers() {
        let mut encoded = vec![1, 2, 3];
        Law::Ulaw.encode_into(&[0, 1000, -1000], &mut encoded);
        assert_eq!(encoded, [0xFF, ulaw_encode(1000), ulaw_encode(-1000)]);
        let mut decoded = vec![7];
        Law::Ulaw.decode_into(&encoded, &mut decoded);
        assert_eq!(
            decoded,
            [0, ulaw_decode(encoded[1]), ulaw_decode(encoded[2])]
        );
    }
}
