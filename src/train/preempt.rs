//! Preemption: SIGTERM (a scheduler's kill, `scancel`, a requeue) and
//! SIGUSR1 (Slurm's `--signal=B:USR1@300` warning, forwarded by the batch
//! script) ask the trainer to stop after its current step with a step
//! checkpoint; the process then releases its lease and exits
//! [`EXIT_PREEMPTED`] (EX_TEMPFAIL), which the generated Slurm script
//! answers by requeueing its array task.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit code of a run stopped by a signal: try again later.
pub const EXIT_PREEMPTED: u8 = 75;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Install the SIGTERM and SIGUSR1 handlers (once) and return the flag
/// they set.
pub fn install() -> &'static AtomicBool {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGTERM, libc::SIGUSR1] {
            // SAFETY: a zeroed sigaction with a handler that only stores to an
            // atomic; SA_RESTART so interrupted reads and writes resume.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    eprintln!("warning: could not install the handler of signal {sig}; a preemption will not checkpoint");
                }
            }
        }
    });
    &STOP
}

/// Has a stop been asked for?
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
