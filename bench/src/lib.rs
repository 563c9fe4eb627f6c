//! What the benchmarks share: reading the process's memory figures.

/// A `kB` line of `/proc/self/status` (`VmRSS:`, `VmHWM:`, …) in KiB; 0
/// when it cannot be read.
pub fn proc_status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes allocated through `alloc` and not freed. A `realloc` that grows a
/// block already counts its growth in `bytes_allocated` (and a shrink in
/// `bytes_deallocated`), so `bytes_reallocated` must not be added again.
pub fn live_bytes(alloc: &stats_alloc::StatsAlloc<std::alloc::System>) -> usize {
    let s = alloc.stats();
    s.bytes_allocated.saturating_sub(s.bytes_deallocated)
}
