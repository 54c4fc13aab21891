//! Fuzz target: `switchboard::fuzzing::rtp_packet` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard::fuzzing::rtp_packet(data);
});
