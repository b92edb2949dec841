// Training allocates and frees many large tensors per step; glibc returns each
// big block to the kernel (mmap/munmap) and every reuse page-faults fresh
// zeroed pages. mimalloc with purging off keeps them (see `main`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

/// `mi_option_purge_delay` (index 15 of `mi_option_e` in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Never hand freed memory back to the OS: a training step frees and
    // re-allocates the same large activations, and purging them made a CPU
    // step 37 % slower (30.4 s vs 22.1 s, LoRA r 8, 8 × 256, 2 cores; a
    // 1 s delay: 17.8 s vs 13.4 s). `MIMALLOC_PURGE_DELAY=<ms>` overrides.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide allocator option; no other thread exists yet.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    // SAFETY: still single-threaded.
    unsafe { peftc::train::parallel::one_thread_per_worker() };
    ExitCode::from(peftc::cli::main())
}
