//! The tokio runtime every daemon runs on.
//!
//! On one host the gateway and the services share the cores with each other and with their
//! clients. Measured on the 2-core machine kind (bench/README.md), a daemon with as many
//! worker threads as cores spends a third more CPU per call on cross-thread wake-ups than
//! with half as many, so the default is half the cores, at least one; `--worker-threads`
//! (or TOKIO_WORKER_THREADS) overrides it.

/// Default worker threads: half the available cores, at least one.
pub fn default_worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.div_ceil(2).max(1)
}

/// Builds the multi-thread runtime with `worker_threads` (None: TOKIO_WORKER_THREADS when
/// set, else [`default_worker_threads`]).
pub fn build(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let from_env = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0);
    let threads = worker_threads
        .filter(|n| *n > 0)
        .or(from_env)
        .unwrap_or_else(default_worker_threads);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_one_worker() {
        assert!(default_worker_threads() >= 1);
        let runtime = build(Some(1)).unwrap();
        assert_eq!(runtime.metrics().num_workers(), 1);
    }
}
