//! The source of "now" and of waiting for a wall-clock instant. Everything that needs the
//! current time (next-run computation, log line prefixes, replay windows) asks a
//! [`Clock`], and the scheduler sleeps through it, so tests drive time by hand instead
//! of sleeping for real.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

/// A future that completes at (or after) a wall-clock instant.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Tells the current time and waits for a future instant.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// Completes once `now() >= deadline`. The system clock may complete a little early
    /// after a long wait (callers re-check `now()`), never much late.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep;
}

/// The shared clock handle the rooms pass around.
pub type SharedClock = Arc<dyn Clock>;

/// Longest single sleep of the system clock. Sleeping in slices re-reads the wall clock,
/// so a clock step (NTP, suspend) delays a timer by at most this much.
const MAX_SLEEP_SLICE: Duration = Duration::from_secs(60);

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        Box::pin(async move {
            loop {
                let left = deadline.duration_since(Timestamp::now());
                let Ok(left) = Duration::try_from(left) else {
                    return; // already past
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLEEP_SLICE)).await;
            }
        })
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(watch::Sender<Timestamp>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: Timestamp) -> Self {
        Self(watch::Sender::new(at))
    }

    /// Moves the clock to `at`, waking every sleeper whose deadline has come.
    pub fn set(&self, at: Timestamp) {
        self.0.send_replace(at);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.borrow()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep {
        let mut now = self.0.subscribe();
        Box::pin(async move {
            // An error means the clock was dropped: time never moves again.
            if now.wait_for(|t| *t >= deadline).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_set_past_their_deadline() {
        let start: Timestamp = "2024-01-10T10:00:00Z".parse().unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let deadline = start + jiff::SignedDuration::from_secs(60);
        let sleeper = tokio::spawn(clock.sleep_until(deadline));
        clock.set(start + jiff::SignedDuration::from_secs(30));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.set(deadline);
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .unwrap()
            .unwrap();
    }
}
