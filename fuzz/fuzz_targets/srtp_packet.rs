//! Fuzz target: `switchboard::fuzzing::srtp_packet` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard::fuzzing::srtp_packet(data);
});
