//! cargo-fuzz target: `ini` from `fuzz/targets.rs` on libFuzzer's inputs.

#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::ini(data));
