//! A TCP byte stream arriving in arbitrary reads: the framer must cut the same messages
//! however the stream is split, and every message it cuts must end where the parser's
//! Content-Length says it ends.
//!
//! Input layout: the first octet `n` (mod 8) gives the number of read sizes that follow,
//! one octet each; the rest is the stream.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/sip/tests/common/exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
    exercise::stream(stream, &sizes);
});
