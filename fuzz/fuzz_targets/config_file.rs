//! Fuzz target: `switchboard::fuzzing::config_file` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard::fuzzing::config_file(data);
});
