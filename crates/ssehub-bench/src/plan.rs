//! The part of a run's plan that every scenario with subscribers shares, decided once from
//! `--hub` and the [`RunArgs`] flags: where the hub is, how subscriptions open, how long the
//! run may take, and the HTTP client its publishers use.

use std::time::Duration;

use anyhow::Context as _;

use crate::args::{ReadyOn, RunArgs};
use crate::{hub_base, parse_headers, seconds};

/// How a run with subscribers goes, as decided from its flags.
pub(crate) struct RunPlan {
    /// The hub's base URL, without a trailing `/`.
    pub(crate) hub: String,
    /// Sent with every request.
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) connect_concurrency: usize,
    /// For one request: opening one subscription, or one publish.
    pub(crate) timeout: Duration,
    /// How long to wait for deliveries after the last publish.
    pub(crate) drain: Duration,
    /// The whole run's bound.
    pub(crate) max_duration: Duration,
    pub(crate) ready_on: ReadyOn,
}

impl RunPlan {
    /// The plan of a run that opens `subscriptions` streams, then publishes `events` at up to
    /// `rate` per second. Without `--max-duration` the run may take long enough to open
    /// everything, publish twice over, drain, and 10 s more.
    pub(crate) fn new(
        hub: &str,
        run: &RunArgs,
        subscriptions: u32,
        events: u32,
        rate: u32,
    ) -> anyhow::Result<RunPlan> {
        let hub = hub_base(hub)?;
        let timeout = seconds(run.timeout, "--timeout")?;
        let drain = seconds(run.drain, "--drain")?;
        let max_duration = match run.max_duration {
            Some(secs) => seconds(secs, "--max-duration")?,
            None => {
                let open_rounds = subscriptions.div_ceil(run.connect_concurrency);
                timeout * open_rounds
                    + Duration::from_secs_f64(2.0 * f64::from(events) / f64::from(rate))
                    + drain
                    + Duration::from_secs(10)
            }
        };
        Ok(RunPlan {
            hub,
            headers: parse_headers(&run.headers)?,
            connect_concurrency: run.connect_concurrency as usize,
            timeout,
            drain,
            max_duration,
            ready_on: run.ready_on,
        })
    }

    /// The publishers' HTTP client: the extra headers, each request bounded by the timeout.
    pub(crate) fn client(&self) -> anyhow::Result<reqwest::Client> {
        reqwest::Client::builder()
            .default_headers(self.headers.clone())
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .tcp_nodelay(true)
            .build()
            .context("cannot build the HTTP client")
    }
}
