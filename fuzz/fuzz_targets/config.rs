//! libFuzzer entry of the `config` target (`scalegnn_fuzz::config`).
#![no_main]

use libfuzzer_sys::fuzz_target;

// Aborts on any single allocation above scalegnn_fuzz::alloc::ALLOC_LIMIT.
#[global_allocator]
static ALLOC: scalegnn_fuzz::alloc::CappedAlloc = scalegnn_fuzz::alloc::CappedAlloc;

fuzz_target!(|data: &[u8]| scalegnn_fuzz::config(data));
