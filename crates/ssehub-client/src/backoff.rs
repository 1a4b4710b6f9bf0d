//! How long to wait before reconnecting: a pure function, so its bounds are unit-tested.
//!
//! After a clean end of stream the wait is the server's reconnection time (`retry:`), as the
//! standard says. After failed attempts the wait grows exponentially from `initial`, is capped
//! at `max` (with `min`, not `max` — the bug tokio-console's reconnect loop once had), gets
//! random jitter so a crowd of clients does not come back in step, and is never below the
//! reconnection time.

use std::time::Duration;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait after a failure.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    ///
    /// `failures` is the number of failed attempts in a row (0 after a successful connection
    /// that ended normally); `reconnection_time` is the server's `retry:` (or the default);
    /// `jitter` is a random number in `[0, 1)`.
    pub fn delay(&self, failures: u32, reconnection_time: Duration, jitter: f64) -> Duration {
        if failures == 0 {
            return reconnection_time;
        }
        let exponent = (failures - 1).min(30);
        let grown = self
            .initial
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max);
        // "Equal jitter": half fixed, half random, so the wait still grows.
        let jitter = jitter.clamp(0.0, 1.0);
        let jittered = grown.mul_f64(0.5 + 0.5 * jitter);
        jittered.max(reconnection_time.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
    };
    const RETRY: Duration = Duration::from_millis(10);

    #[test]
    fn clean_reconnect_waits_the_reconnection_time() {
        assert_eq!(
            B.delay(0, Duration::from_millis(1234), 0.7),
            Duration::from_millis(1234)
        );
    }

    #[test]
    fn grows_then_caps() {
        assert_eq!(B.delay(1, RETRY, 1.0), Duration::from_millis(100));
        assert_eq!(B.delay(2, RETRY, 1.0), Duration::from_millis(200));
        assert_eq!(B.delay(4, RETRY, 1.0), Duration::from_millis(800));
        assert_eq!(B.delay(10, RETRY, 1.0), Duration::from_secs(5));
        assert_eq!(B.delay(u32::MAX, RETRY, 1.0), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_within_half_and_full() {
        for j in [0.0, 0.25, 0.5, 0.99] {
            let d = B.delay(3, RETRY, j);
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_millis(400),
                "{d:?}"
            );
        }
    }

    #[test]
    fn never_below_the_servers_retry_but_never_above_the_cap() {
        assert_eq!(
            B.delay(1, Duration::from_secs(2), 0.0),
            Duration::from_secs(2)
        );
        assert_eq!(
            B.delay(1, Duration::from_secs(60), 0.0),
            Duration::from_secs(5)
        );
    }
}
