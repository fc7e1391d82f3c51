#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| authcell::fuzzing::credential_check(data));
