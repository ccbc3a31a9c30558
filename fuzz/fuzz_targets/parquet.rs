//! libFuzzer entry of the `parquet` target (`scalegnn_fuzz::parquet`).
#![no_main]

use libfuzzer_sys::fuzz_target;

// Aborts on any single allocation above scalegnn_fuzz::alloc::ALLOC_LIMIT.
#[global_allocator]
static ALLOC: scalegnn_fuzz::alloc::CappedAlloc = scalegnn_fuzz::alloc::CappedAlloc;

fuzz_target!(|data: &[u8]| {
    // libFuzzer's panic hook aborts before the reader's catch_unwind can turn a panic of the
    // parquet decoder into an error; those (upstream, contained by design) are let through.
    scalegnn_fuzz::contain_parquet_panics();
    scalegnn_fuzz::parquet(data)
});
