//! Fuzz target: `switchboard::fuzzing::sip_stream` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard::fuzzing::sip_stream(data);
});
