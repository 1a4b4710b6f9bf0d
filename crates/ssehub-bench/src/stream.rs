//! One subscriber stream of a bench run, the same for every scenario: opened under the run's
//! bound on concurrent opens and a timeout, then read until its tally has everything, the run
//! stops (or passes its deadline), or the stream breaks. What the bytes mean is the
//! scenario's business (its [`Tally`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::args::ReadyOn;
use crate::http1::{self, Response, Target};
use crate::now_micros;

/// What a scenario does with a stream's bytes.
pub(crate) trait Tally {
    /// Body bytes that arrived at `now` (microseconds since the Unix epoch).
    fn feed(&mut self, bytes: &[u8], now: u64);

    /// Whether everything this subscriber expects has arrived, so its stream may end.
    fn complete(&self) -> bool;
}

/// How to open a stream, and when to give up on it.
pub(crate) struct Opening {
    pub(crate) target: Arc<Target>,
    pub(crate) ready_on: ReadyOn,
    /// For one open, from the permit on.
    pub(crate) timeout: Duration,
    /// Bounds the opens in flight.
    pub(crate) permits: Arc<Semaphore>,
    /// Told once whether the stream opened (or why not).
    pub(crate) opened: mpsc::UnboundedSender<Result<(), String>>,
    /// Set when the run is over.
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) deadline: Instant,
}

/// How a stream ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Its tally is complete.
    Complete,
    /// Stopped by the bench (the run is over, its deadline passed, or it never opened because
    /// the run stopped first).
    Stopped,
    /// It did not open, the hub ended it, or it broke.
    Broken(String),
}

/// Opens the stream and feeds `tally` until the stream ends.
pub(crate) async fn follow(opening: Opening, tally: &mut impl Tally) -> End {
    let Opening {
        target,
        ready_on,
        timeout,
        permits,
        opened,
        mut stop,
        deadline,
    } = opening;
    // One future for the whole stream: ready when the run stops or its deadline passes.
    let stopped = async move {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    };
    tokio::pin!(stopped);

    let result = {
        let opening = async {
            let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
            tokio::time::timeout(timeout, open(&target, ready_on, tally))
                .await
                .map_err(|_| format!("not open within {timeout:?}"))?
        };
        tokio::select! {
            () = &mut stopped => Err(None),
            result = opening => result.map_err(Some),
        }
    };
    let mut response = match result {
        Ok(response) => {
            let _ = opened.send(Ok(()));
            response
        }
        Err(error) => {
            let _ = opened.send(Err(error
                .clone()
                .unwrap_or_else(|| "stopped before it opened".into())));
            return error.map_or(End::Stopped, End::Broken);
        }
    };
    loop {
        if tally.complete() {
            return End::Complete;
        }
        // One clock reading per read: the events that arrived together, arrived then.
        let mut now = None;
        let mut sink = |bytes: &[u8]| {
            let now = *now.get_or_insert_with(now_micros);
            tally.feed(bytes, now);
        };
        let read = tokio::select! {
            biased;
            () = &mut stopped => return End::Stopped,
            read = response.read(&mut sink) => read,
        };
        match read {
            Ok(()) => {}
            Err(http1::BodyEnd::Finished) => return End::Broken("the hub ended the stream".into()),
            Err(http1::BodyEnd::Failed(e)) => return End::Broken(e),
        }
    }
}

/// Sends the `GET` and waits for the stream to be open; bytes already read are fed.
async fn open(
    target: &Target,
    ready_on: ReadyOn,
    tally: &mut impl Tally,
) -> Result<Response, String> {
    let mut fed = 0;
    let mut response = Response::get(target, &mut |bytes: &[u8]| {
        fed += bytes.len();
        tally.feed(bytes, now_micros());
    })
    .await
    .map_err(|e| format!("subscribe: {e}"))?;
    while ready_on == ReadyOn::FirstByte && fed == 0 {
        let read = response
            .read(&mut |bytes: &[u8]| {
                fed += bytes.len();
                tally.feed(bytes, now_micros());
            })
            .await;
        match read {
            Ok(()) => {}
            Err(http1::BodyEnd::Finished) => {
                return Err("subscribe: the stream ended before its first byte".into());
            }
            Err(http1::BodyEnd::Failed(e)) => return Err(format!("subscribe: {e}")),
        }
    }
    Ok(response)
}

/// Waits until `expected` streams have said whether they opened (or `deadline` passes); an
/// error, naming every distinct reason, when any did not open.
pub(crate) async fn wait_open(
    opened: &mut mpsc::UnboundedReceiver<Result<(), String>>,
    expected: usize,
    deadline: Instant,
    started: Instant,
) -> anyhow::Result<()> {
    let mut open = 0;
    let mut errors = Vec::new();
    while open + errors.len() < expected {
        match tokio::time::timeout_at(deadline, opened.recv()).await {
            Ok(Some(Ok(()))) => open += 1,
            Ok(Some(Err(error))) => errors.push(error),
            Ok(None) | Err(_) => break,
        }
    }
    if open < expected {
        errors.sort();
        errors.dedup();
        anyhow::bail!(
            "{open} of {expected} subscriptions opened in {:.2} s; not publishing. Errors: {}",
            started.elapsed().as_secs_f64(),
            if errors.is_empty() {
                "none (the run's deadline passed)".to_string()
            } else {
                errors.join("; ")
            }
        );
    }
    Ok(())
}
