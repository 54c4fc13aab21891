//! Fuzz target: `switchboard::fuzzing::vcard_file` (see src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    switchboard::fuzzing::vcard_file(data);
});
