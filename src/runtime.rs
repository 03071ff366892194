//! The one tokio runtime of the process, for librdkafka's async admin calls
//! (and later the object-store I/O). Created on first use; a forked child
//! gets a clear panic instead of a deadlock on the parent's threads.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

static RUNTIME: OnceLock<(u32, Runtime)> = OnceLock::new();

/// The shared runtime.
pub fn runtime() -> &'static Runtime {
    let (pid, rt) = RUNTIME.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kafkalake-io")
            .enable_all()
            .build()
            .expect("kafkalake could not start its tokio runtime");
        (std::process::id(), rt)
    });
    assert_eq!(
        *pid,
        std::process::id(),
        "kafkalake was used before this process forked; its runtime cannot cross a fork. \
         Use the 'spawn' multiprocessing start method, or import kafkalake only in the child"
    );
    rt
}

/// Run `fut` to completion on the shared runtime from a non-async thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    runtime().block_on(fut)
}

/// The longest wait, timeout or run length kafkalake accepts (a year):
/// instants much further ahead overflow the clock.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);

/// `s` seconds as a wait, clamped to `0..=MAX_WAIT` (NaN is no wait).
pub fn clamped_wait(s: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(s.max(0.0))
        .unwrap_or(MAX_WAIT)
        .min(MAX_WAIT)
}
