//! Forwarding, playing and recording allocate nothing once a call runs and the
//! daemon hands buffers back: a counting global allocator watches a bridged,
//! transcoded, recorded call and a ringing call for thousands of packets.
//!
//! Only the test's own thread counts: libtest's main thread (and anything else the
//! harness runs) may allocate while the test runs, which under load made this test fail
//! on allocations the relay never made.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::*;
use sihai_media::Law;
use sihai_relay::{CallMedia, Source};

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // `const` with a `Cell<bool>`: no lazy initialisation and no destructor, so reading
    // it inside the allocator never allocates itself.
    static COUNTED_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn count_allocation() {
    if COUNTED_THREAD.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed straight to the system allocator; counting has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// One 20 ms step of a bridged call: a packet each way, the timers, and the daemon
/// collecting and recycling everything.
fn bridged_step(
    call: &mut CallMedia,
    t0: Instant,
    step: u32,
    caller: &mut [u8],
    phone: &mut [u8],
) -> usize {
    let at = t0 + ms(20) * step;
    for packet in [&mut *caller, &mut *phone] {
        packet[2..4].copy_from_slice(&(step as u16).to_be_bytes());
        packet[4..8].copy_from_slice(&(step * 160).to_be_bytes());
    }
    call.handle_packet(at, CALLER_PORT, caller_sdp(), caller);
    call.handle_packet(at, PHONE_PORT, phone_sdp(), phone);
    call.handle_timeout(at);
    let mut sent = 0;
    while let Some(transmit) = call.poll_transmit() {
        sent += 1;
        call.recycle(transmit.payload);
    }
    while call.poll_recorded().is_some() {}
    while call.poll_event().is_some() {}
    sent
}

fn ringing_step(call: &mut CallMedia) -> usize {
    let Some(deadline) = call.poll_timeout() else {
        return 0;
    };
    call.handle_timeout(deadline);
    let mut sent = 0;
    while let Some(transmit) = call.poll_transmit() {
        sent += 1;
        call.recycle(transmit.payload);
    }
    while call.poll_event().is_some() {}
    sent
}

#[test]
fn steady_state_allocates_nothing() {
    COUNTED_THREAD.with(|counted| counted.set(true));
    let t0 = Instant::now();
    let mut call = bridged(Law::Ulaw, Law::Alaw, t0);
    call.set_recording(true, t0);
    let mut caller = audio(Law::Ulaw, CALLER_SSRC, 0, 0, 1200);
    let mut phone = audio(Law::Alaw, PHONE_SSRC, 0, 0, -800);
    let mut ringing = new_call(caller_media(Law::Alaw), t0);
    ringing.play(Source::Ringback, t0);

    for step in 0..100 {
        bridged_step(&mut call, t0, step, &mut caller, &mut phone);
        ringing_step(&mut ringing);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut sent = 0;
    for step in 100..5100 {
        sent += bridged_step(&mut call, t0, step, &mut caller, &mut phone);
        sent += ringing_step(&mut ringing);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(sent, 15_000);
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {sent} packets"
    );
    // The counter works: a fresh buffer is an allocation.
    let fresh: Vec<u8> = Vec::with_capacity(4);
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > before);
    drop(fresh);
}
