//! Data parallelism over CPU cores.
//!
//! burn-ndarray runs elementwise ops on one thread, so the CPU backend gets
//! its cores busy by handing whole micro-batches to threads; each thread's
//! matrix products then run single-threaded (set by the CLI; see
//! [`one_thread_per_worker`]).

/// `f` over `items`, `workers` tasks each taking a contiguous share, on
/// rayon's pool (persistent threads: fresh threads per step would each start
/// an empty allocator heap and page-fault their activations in again);
/// results in input order, so any reduction over them is deterministic.
pub fn par_map<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use rayon::prelude::*;
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(workers);
    let parts: Vec<Vec<R>> = items.par_chunks(per).map(|chunk| chunk.iter().map(&f).collect()).collect();
    parts.into_iter().flatten().collect()
}

/// Make each CPU worker's kernels single-threaded, as the data-parallel
/// workers already occupy every core: matrixmultiply (burn-ndarray's matmul,
/// `MATMUL_NUM_THREADS`) and, for `--backend tch` with
/// `PEFTC_TCH_DEVICE=cpu`, libtorch's intra-op pool (`OMP_NUM_THREADS`). On
/// the 2-core CI machine a LoRA training step took 18.5 s with both levels
/// threaded and 14.9 s this way (ndarray); libtorch: 13.2 s with one worker
/// on 2 threads, 11.3 s with 2 workers on 1 thread each. Variables the user
/// set are left alone.
///
/// # Safety
/// Sets environment variables: call before any other thread exists.
pub unsafe fn one_thread_per_worker() {
    let mut vars = vec!["MATMUL_NUM_THREADS"];
    if crate::train::backend::tch_on_cpu() {
        vars.extend(["OMP_NUM_THREADS", "MKL_NUM_THREADS"]);
    }
    for var in vars {
        if std::env::var_os(var).is_none() {
            // SAFETY: the caller guarantees no other thread is running.
            unsafe { std::env::set_var(var, "1") };
        }
    }
}
