//! Data parallelism over CPU cores.
//!
//! burn-ndarray runs elementwise ops on one thread, so the CPU backend gets
//! its cores busy by handing whole micro-batches to threads; each thread's
//! matrix products then run single-threaded (set by the CLI; see
//! [`one_thread_per_worker`]).

/// `f` over `items` on `workers` tasks that each take the next unclaimed
/// item as soon as they are free (dynamic scheduling: no worker idles while
/// work remains), folded with `fold` **in item order** as results arrive, so
/// the result does not depend on which worker computed what or on the number
/// of workers. Results that finish early wait (at most a few, as workers
/// take items in order) until the ones before them are folded. Runs on
/// rayon's pool (persistent threads: fresh threads per step would each start
/// an empty allocator heap and page-fault their activations in again).
/// Returns the fold and each worker's busy seconds (time inside `f`).
pub fn ordered_fold<T, R, A>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
    init: A,
    fold: impl FnMut(A, R) -> A + Send,
) -> (A, Vec<f64>)
where
    T: Sync,
    R: Send,
    A: Send,
{
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        let t = Instant::now();
        let mut fold = fold;
        let acc = items.iter().fold(init, |a, x| fold(a, f(x)));
        return (acc, vec![t.elapsed().as_secs_f64()]);
    }
    struct State<A, R, F> {
        acc: Option<A>,
        next: usize,
        pending: BTreeMap<usize, R>,
        fold: F,
    }
    let state = Mutex::new(State { acc: Some(init), next: 0, pending: BTreeMap::new(), fold });
    let claimed = AtomicUsize::new(0);
    let busy: Vec<Mutex<f64>> = (0..workers).map(|_| Mutex::new(0.0)).collect();
    rayon::scope(|s| {
        for slot in &busy {
            let (state, claimed, f) = (&state, &claimed, &f);
            s.spawn(move |_| {
                loop {
                    let i = claimed.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let t = Instant::now();
                    let r = f(&items[i]);
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) += t.elapsed().as_secs_f64();
                    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                    st.pending.insert(i, r);
                    loop {
                        let next = st.next;
                        let Some(r) = st.pending.remove(&next) else { break };
                        let acc = st.acc.take().expect("the fold is always present between items");
                        st.acc = Some((st.fold)(acc, r));
                        st.next += 1;
                    }
                }
            });
        }
    });
    let st = state.into_inner().unwrap_or_else(|e| e.into_inner());
    let busy = busy.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner())).collect();
    (st.acc.expect("every item was folded"), busy)
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
