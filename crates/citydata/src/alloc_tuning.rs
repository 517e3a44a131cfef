//! The process's memory allocator settings, applied once at start.
//!
//! glibc's malloc gives every thread that contends for the heap its own arena (up to 8 per core)
//! and rarely returns their free pages to the system. A server whose Tokio workers and blocking
//! threads take turns on large, short-lived Arrow buffers then grows its resident memory for
//! hours without leaking anything: an 8-minute soak measured +144 MB per 10 minutes with the
//! default and a flat line with two arenas (BENCHMARKS.md, "Soak"; the rest of that growth was
//! delta-rs' log replay, fixed by checkpoints every 10 commits in the lake). So the binary
//! limits the arenas to two, as `MALLOC_ARENA_MAX=2` would, and fixes the mmap threshold (below).
//! An operator's own `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` wins.

/// Allocations of at least this many bytes are mapped from the system on their own and handed
/// back when freed. glibc's default threshold starts at 128 KiB and rises (up to 32 MiB) each
/// time such a block is freed, after which multi-megabyte Arrow buffers come from the arenas and
/// stay there: an ingest's merge of its sorted runs grew the server by 120 MB while its live
/// heap stayed near 130 MB. A fixed threshold also turns the rise off. Of the sizes tried
/// (256 KiB to 1 MiB) 256 KiB kept the 2 GB ingest's peak lowest; it costs the 1,000,000-row
/// ingest about 4% (a mapping's pages are faulted in anew each time); see BENCHMARKS.md.
const MMAP_THRESHOLD_BYTES: i32 = 256 << 10;

/// Limits glibc's malloc to two arenas unless `MALLOC_ARENA_MAX` is set, and fixes its mmap
/// threshold at [`MMAP_THRESHOLD_BYTES`] unless `MALLOC_MMAP_THRESHOLD_` is set. Call before
/// any thread is started. A no-op on other C libraries.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (var, param, value, what) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2, "limit malloc arenas (M_ARENA_MAX)"),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES, "fix the mmap threshold"),
    ] {
        if std::env::var_os(var).is_some() {
            continue;
        }
        // SAFETY: `mallopt` only changes a tuning parameter of the allocator; it is called from
        // `main` before the runtime starts any thread, with values in each parameter's range.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::mallopt(param, value) };
        if ok == 0 {
            eprintln!("warning: cannot {what} (mallopt)");
        }
    }
}

/// Hands the allocator's free memory back to the system (glibc's `malloc_trim`). Set as the
/// lake's [`citydata_lake::ingest::AFTER_READ`]: an ingest's reader frees its key set on one
/// arena just before the sort's merge allocates on the other. A no-op on other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only returns free pages to the system, under the arenas' locks;
        // it may be called from any thread at any time.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
