//! One datagram: parse, validate, every typed view, the canonical form (a fixed point
//! with the same verdict), responses built to it, and forwarding edits.
//!
//! The checks live in `crates/sip/tests/common/exercise.rs`, shared with the property
//! tests, so a crash found here can be replayed there as a plain unit test.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/sip/tests/common/exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    exercise::message(data);
});
