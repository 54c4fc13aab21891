//! Fuzz target: `switchboard::fuzzing::csv_file` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard::fuzzing::csv_file(data);
});
