//! G.711 properties over arbitrary buffers: transcoding in place equals decoding in
//! one law and encoding in the other, and encoding is a monotonic quantiser.

use proptest::prelude::*;
use sihai_media::{ALAW_TO_ULAW, Law, ULAW_TO_ALAW, transcode_in_place};

proptest! {
    #[test]
    fn transcoding_equals_decode_then_encode(payload in prop::collection::vec(any::<u8>(), 0..320)) {
        for (from, to, table) in [(Law::Ulaw, Law::Alaw, &ULAW_TO_ALAW), (Law::Alaw, Law::Ulaw, &ALAW_TO_ULAW)] {
            let mut converted = payload.clone();
            transcode_in_place(&mut converted, table);
            let expected: Vec<u8> = payload.iter().map(|&byte| to.encode(from.decode(byte))).collect();
            prop_assert_eq!(converted, expected);
        }
    }

    #[test]
    fn encoding_is_monotonic(a in any::<i16>(), b in any::<i16>()) {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        for law in Law::ALL {
            prop_assert!(law.decode(law.encode(low)) <= law.decode(law.encode(high)));
        }
    }

    #[test]
    fn decoded_samples_are_fixed_points(sample in any::<i16>()) {
        for law in Law::ALL {
            let quantised = law.decode(law.encode(sample));
            prop_assert_eq!(law.decode(law.encode(quantised)), quantised);
            // Quantisation never flips the sign.
            prop_assert!(i32::from(quantised) * i32::from(sample) >= 0);
        }
    }
}
