//! Thread-per-core workers: N OS threads, each running a single-threaded tokio
//! runtime. Every worker accepts clients on the shared listening socket and has its
//! own connections to every node, so a request is read, routed, written to its node,
//! answered and written back on one thread: no task, channel or cache line on the
//! hot path is shared between cores (Envoy's worker model).
//!
//! Worker 0 is the thread that calls [`Workers::run`]; it also runs the control
//! tasks (admin, reload, health checks, ejection).

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio_util::sync::CancellationToken;

/// How long a stopping worker waits for tasks still running (blocking file reads)
/// once the proxy is done: its tasks are dropped, so the process exits by the drain
/// deadline plus this.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Index of the worker running on this thread (0 outside workers).
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// Handles of every worker's runtime, in worker order.
#[derive(Clone, Debug)]
pub struct Workers {
    handles: Arc<Vec<Handle>>,
}

impl Workers {
    /// Workers made of the current runtime only (tests, or code already inside a
    /// runtime): one worker.
    pub fn current_runtime() -> Workers {
        Workers {
            handles: Arc::new(vec![Handle::current()]),
        }
    }

    /// Number of workers.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// True when there is no worker (never for a started set).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Every worker's runtime handle.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Starts `n` workers (at least one) and runs `main` on worker 0 (this thread)
    /// until it returns; then stops the other workers.
    pub fn run<F, T>(n: usize, main: impl FnOnce(Workers) -> F) -> std::io::Result<T>
    where
        F: Future<Output = T>,
    {
        let runtimes: Vec<Runtime> = (0..n.max(1))
            .map(|_| Builder::new_current_thread().enable_all().build())
            .collect::<Result<_, _>>()?;
        let workers = Workers {
            handles: Arc::new(runtimes.iter().map(|r| r.handle().clone()).collect()),
        };
        let stop = CancellationToken::new();
        let mut runtimes = runtimes.into_iter();
        let first = runtimes
            .next()
            .ok_or_else(|| std::io::Error::other("no worker"))?;
        let threads: Vec<_> = runtimes
            .enumerate()
            .map(|(i, rt)| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("ringproxy-w{}", i + 1))
                    .spawn(move || {
                        WORKER.with(|w| w.set(i + 1));
                        rt.block_on(stop.cancelled());
                        rt.shutdown_timeout(STOP_GRACE);
                    })
            })
            .collect::<Result<_, _>>()?;
        WORKER.with(|w| w.set(0));
        let out = first.block_on(main(workers));
        stop.cancel();
        for t in threads {
            let _ = t.join();
        }
        first.shutdown_timeout(STOP_GRACE);
        Ok(out)
    }
}
