//! All the subscriber streams of a run, as one thing: opened together under the run's bound
//! on concurrent opens (an error, and nothing published, unless every one opens), then read
//! until the run stops them, each ending with its tally and how its stream ended.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http1::Target;
use crate::plan::RunPlan;
use crate::stream::{self, End, Opening, Tally};

/// One subscriber at the end of the run.
pub(crate) struct Outcome<T> {
    pub(crate) tally: T,
    pub(crate) end: End,
}

/// The open streams of a run.
pub(crate) struct Subscribers<T> {
    tasks: JoinSet<Outcome<T>>,
    stop: watch::Sender<bool>,
}

impl<T: Tally + Send + 'static> Subscribers<T> {
    /// Opens one stream per `(target, tally)`, and waits until every one is open. When any
    /// does not open (or `deadline` passes), stops them all and returns why.
    pub(crate) async fn open(
        plan: &RunPlan,
        streams: Vec<(Arc<Target>, T)>,
        started: Instant,
        deadline: Instant,
    ) -> anyhow::Result<Self> {
        let (stop, stop_rx) = watch::channel(false);
        let (open_tx, mut open_rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(plan.connect_concurrency));
        let expected = streams.len();
        let mut tasks = JoinSet::new();
        for (target, mut tally) in streams {
            let opening = Opening {
                target,
                ready_on: plan.ready_on,
                timeout: plan.timeout,
                permits: permits.clone(),
                opened: open_tx.clone(),
                stop: stop_rx.clone(),
                deadline,
            };
            tasks.spawn(async move {
                let end = stream::follow(opening, &mut tally).await;
                Outcome { tally, end }
            });
        }
        drop(open_tx);
        if let Err(error) = stream::wait_open(&mut open_rx, expected, deadline, started).await {
            let _ = stop.send(true);
            tasks.abort_all();
            return Err(error);
        }
        Ok(Subscribers { tasks, stop })
    }

    /// The next subscriber whose stream ended by itself (complete or broken); `None` when
    /// none is left.
    pub(crate) async fn next_ended(&mut self) -> Option<anyhow::Result<Outcome<T>>> {
        let joined = self.tasks.join_next().await?;
        Some(joined.map_err(anyhow::Error::from))
    }

    /// Stops every stream, and gives each subscriber's outcome to `each`. Stopped streams end
    /// at once; the wait is bounded all the same.
    pub(crate) async fn stop(mut self, mut each: impl FnMut(Outcome<T>)) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        while let Ok(Some(outcome)) =
            tokio::time::timeout(Duration::from_secs(5), self.tasks.join_next()).await
        {
            each(outcome?);
        }
        anyhow::ensure!(
            self.tasks.is_empty(),
            "{} subscriber tasks did not stop",
            self.tasks.len()
        );
        Ok(())
    }
}
