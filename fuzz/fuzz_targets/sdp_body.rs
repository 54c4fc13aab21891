//! Fuzz target: `switchboard::fuzzing::sdp_body` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard::fuzzing::sdp_body(data);
});
