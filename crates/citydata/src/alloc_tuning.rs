//! The process's memory allocator settings, applied once at start.
//!
//! glibc's malloc gives every thread that contends for the heap its own arena (up to 8 per core)
//! and rarely returns their free pages to the system. A server whose Tokio workers and blocking
//! threads take turns on large, short-lived Arrow buffers then grows its resident memory for
//! hours without leaking anything: an 8-minute soak measured +144 MB per 10 minutes with the
//! default and a flat line with two arenas (BENCHMARKS.md, "Soak"; the rest of that growth was
//! delta-rs' log replay, fixed by checkpoints every 10 commits in the lake). So the binary
//! limits the arenas to two, as `MALLOC_ARENA_MAX=2` would. An operator's own
//! `MALLOC_ARENA_MAX` wins.

/// Limits glibc's malloc to two arenas unless `MALLOC_ARENA_MAX` is set. Call before any thread
/// is started. A no-op on other C libraries.
pub fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes a tuning parameter of the allocator; it is called from
        // `main` before the runtime starts any thread, and M_ARENA_MAX takes any positive value.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
        if ok == 0 {
            eprintln!("warning: cannot limit malloc arenas (mallopt M_ARENA_MAX)");
        }
    }
}
