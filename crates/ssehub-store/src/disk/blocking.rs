//! Running a commit off the runtime, and waking its caller promptly when it is done.
//!
//! A commit blocks (redb's write and its fsync), so it runs on tokio's blocking pool. What
//! matters is how the waiting task — the hub's commit task — is woken afterwards. Through
//! `spawn_blocking`'s handle it is woken from a thread outside the runtime, which puts it at the
//! back of the runtime's shared queue. Under fan-out that queue holds the connection tasks of
//! the subscribers the previous event woke (all that did not fit a worker's local queue): at
//! 10,000 subscribers the commit task waited about 80 ms behind their socket writes before it
//! could fan out and answer, and a durable hub published 10–40 events/s where the memory store
//! published 100 (BENCHMARKS.md, "Durable store under fan-out").
//!
//! A task woken by the runtime's I/O driver is scheduled on the worker that polled the driver,
//! next (tokio's LIFO slot), as a task woken by another task is; that is how a publish reaches
//! the commit task, and the answer the publisher, with the memory store. So the blocking side
//! signals completion by closing its end of a socket pair whose other end the waiting task
//! reads through the runtime: the commit task then runs as soon as a worker notices, and fans
//! out and answers just as it does after a memory append.

use tokio::sync::oneshot;

/// Runs `work` on tokio's blocking pool and returns its result, waking the caller through
/// the runtime's I/O driver (see the module doc). `Err` with a description when `work`
/// panicked.
///
/// # Panics
///
/// On a runtime without I/O enabled (as registering any socket does).
#[cfg(unix)]
pub(super) async fn run<T, F>(work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let pair = std::os::unix::net::UnixStream::pair().and_then(|(done, signal)| {
        signal.set_nonblocking(true)?;
        Ok((done, tokio::net::UnixStream::from_std(signal)?))
    });
    let Ok((done, signal)) = pair else {
        // No descriptor left: wait the ordinary way.
        return run_plain(work).await;
    };
    let (tx, mut rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let _ = tx.send(work());
        // Closing this end makes the other one readable (end of stream).
        drop(done);
    });
    loop {
        if signal.readable().await.is_err() {
            break;
        }
        match rx.try_recv() {
            Ok(value) => return Ok(value),
            Err(oneshot::error::TryRecvError::Closed) => {
                return Err("the blocking task panicked".into());
            }
            Err(oneshot::error::TryRecvError::Empty) => {
                // Readiness with nothing to read (the driver may report it spuriously) is
                // cleared by the read; wait again. The end of stream with no value yet means
                // `work` panicked and its closure is still being dropped: wait for that the
                // plain way.
                if let Ok(0) = signal.try_read(&mut [0; 1]) {
                    break;
                }
            }
        }
    }
    rx.await.map_err(|_| "the blocking task panicked".into())
}

/// Runs `work` on tokio's blocking pool and returns its result. `Err` with a description when
/// `work` panicked.
#[cfg(not(unix))]
pub(super) async fn run<T, F>(work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    run_plain(work).await
}

async fn run_plain<T, F>(work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn returns_the_result_of_the_work() {
        for i in 0..100u32 {
            let got = run(move || {
                std::thread::sleep(std::time::Duration::from_micros(u64::from(i % 3) * 100));
                i * 2
            })
            .await;
            assert_eq!(got, Ok(i * 2));
        }
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_a_hang() {
        let got = run(|| -> u32 { panic!("boom") }).await;
        assert!(got.is_err());
    }
}
