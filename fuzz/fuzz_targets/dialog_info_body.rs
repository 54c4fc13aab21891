//! Fuzz target: `switchboard::fuzzing::dialog_info_body` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard::fuzzing::dialog_info_body(data);
});
