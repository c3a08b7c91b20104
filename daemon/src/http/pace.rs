//! Pacing by the rate-limit budget a vendor reports on every answer (Okta's
//! `X-Rate-Limit-*`, OneLogin's `X-RateLimit-*`): requests go out while the current window has
//! budget left beyond a reserve, counting those still in flight, and wait for the window's reset
//! when it has not. The budget is used, not overrun: no 429 storm, and the reserve leaves the
//! admin's other tools on the same budget something to work with.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The budget one answer reports for its bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Requests allowed in a window.
    pub limit: u64,
    /// Requests left in the current window.
    pub remaining: u64,
    /// When the window resets, from now.
    pub reset_in: Duration,
}

/// What is known of one bucket.
struct Bucket {
    /// No answer has told its budget yet: one request goes out to learn it.
    probing: bool,
    limit: u64,
    remaining: u64,
    resets_at: Instant,
    in_flight: u64,
}

impl Bucket {
    /// The share of a window kept back: a twentieth, at least one request.
    fn reserve(&self) -> u64 {
        (self.limit / 20).max(1)
    }
}

/// The buckets of one API, keyed by the vendor's endpoint family.
#[derive(Default)]
pub struct Pacer {
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Wakes requests waiting for a probe's answer.
    answered: tokio::sync::Notify,
}

/// A request counted in flight in its bucket until it is dropped.
pub struct Permit<'a> {
    pacer: &'a Pacer,
    bucket: String,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(bucket) = self.pacer.lock().get_mut(&self.bucket) {
            bucket.in_flight = bucket.in_flight.saturating_sub(1);
            // An answer without budget headers: the bucket is not limited that we know of.
            bucket.probing = false;
        }
        self.pacer.answered.notify_waiters();
    }
}

/// What a request does next.
enum Next {
    Go,
    /// Wait for the probe in flight to be answered.
    Probe,
    Sleep(Duration),
}

impl Pacer {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Bucket>> {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `bucket` has budget for one more request, and counts it in flight.
    ///
    /// # Errors
    /// When the budget is spent until a reset further away than `max_wait`: the wait, to say
    /// so rather than stall the read.
    pub async fn acquire(&self, bucket: &str, max_wait: Duration) -> Result<Permit<'_>, Duration> {
        loop {
            let answered = self.answered.notified();
            let next = {
                let mut buckets = self.lock();
                let b = buckets.entry(bucket.to_string()).or_insert(Bucket {
                    probing: true,
                    limit: u64::MAX,
                    remaining: u64::MAX,
                    resets_at: Instant::now(),
                    in_flight: 0,
                });
                let now = Instant::now();
                if b.probing {
                    match b.in_flight {
                        0 => Next::Go,
                        _ => Next::Probe,
                    }
                } else {
                    if now >= b.resets_at {
                        // A new window: its budget is the limit until an answer says more.
                        b.remaining = b.remaining.max(b.limit);
                    }
                    if b.remaining > b.in_flight.saturating_add(b.reserve()) {
                        Next::Go
                    } else if b.resets_at > now {
                        Next::Sleep(b.resets_at - now)
                    } else {
                        // The window has reset but the answers in flight have not said so.
                        Next::Probe
                    }
                }
                .also_counting(b)
            };
            match next {
                Next::Go => {
                    return Ok(Permit {
                        pacer: self,
                        bucket: bucket.to_string(),
                    });
                }
                Next::Sleep(wait) if wait > max_wait => return Err(wait),
                Next::Probe => {
                    // Bounded, in case the answer is lost with its request's future.
                    let _ = tokio::time::timeout(Duration::from_secs(1), answered).await;
                }
                Next::Sleep(wait) => {
                    tracing::debug!(
                        "rate limit of {bucket} nearly used: waiting {:.1} s for its reset",
                        wait.as_secs_f32()
                    );
                    tokio::time::sleep(wait + jitter()).await;
                }
            }
        }
    }

    /// Records the budget an answer from `bucket` reported. Answers of one window may come
    /// out of order: the lowest remaining count stands until the window resets.
    pub fn observe(&self, bucket: &str, budget: Budget) {
        let resets_at = Instant::now() + budget.reset_in;
        {
            let mut buckets = self.lock();
            let entry = buckets.entry(bucket.to_string()).or_insert(Bucket {
                probing: true,
                limit: budget.limit,
                remaining: budget.remaining,
                resets_at,
                in_flight: 0,
            });
            // Answers of one window name the same reset, give or take the second they were
            // written in; another reset is newer news (a new window, or a limit that changed).
            let apart = match resets_at > entry.resets_at {
                true => resets_at - entry.resets_at,
                false => entry.resets_at - resets_at,
            };
            let new_window = entry.probing || apart > Duration::from_secs(1);
            entry.probing = false;
            entry.limit = budget.limit;
            entry.remaining = match new_window {
                true => budget.remaining,
                false => entry.remaining.min(budget.remaining),
            };
            if new_window {
                entry.resets_at = resets_at;
            }
        }
        self.answered.notify_waiters();
    }
}

impl Next {
    /// Counts a request that goes in flight.
    fn also_counting(self, bucket: &mut Bucket) -> Next {
        if let Next::Go = self {
            bucket.in_flight += 1;
        }
        self
    }
}

/// Up to a quarter second, so waiting requests do not all start in the same instant.
fn jitter() -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    Duration::from_millis(u64::from(byte[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(300);

    #[tokio::test]
    async fn requests_go_out_until_the_reserve_and_then_wait_for_the_reset() {
        use futures_util::FutureExt;
        let pacer = Pacer::default();
        let first = pacer.acquire("users", MAX).await.unwrap();
        // Until the first answer tells the budget, nothing else goes out.
        assert!(pacer.acquire("users", MAX).now_or_never().is_none());
        pacer.observe(
            "users",
            Budget {
                limit: 40,
                remaining: 5,
                reset_in: Duration::from_millis(400),
            },
        );
        drop(first);
        // 5 left, 2 kept back: three more go out at once (without waiting at all).
        let started = Instant::now();
        let permits: Vec<Permit<'_>> = (0..3)
            .map(|_| {
                pacer
                    .acquire("users", MAX)
                    .now_or_never()
                    .expect("budget left")
                    .unwrap()
            })
            .collect();
        // The fourth waits for the window to reset.
        assert!(pacer.acquire("users", MAX).now_or_never().is_none());
        let fourth = pacer.acquire("users", MAX).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(400));
        drop((permits, fourth));
        // Another bucket is not held up.
        assert!(pacer.acquire("groups", MAX).now_or_never().is_some());
    }

    #[test]
    fn answers_of_one_window_keep_the_lowest_count_and_a_new_window_replaces_it() {
        let pacer = Pacer::default();
        let budget = |remaining, reset_secs| Budget {
            limit: 600,
            remaining,
            reset_in: Duration::from_secs(reset_secs),
        };
        pacer.observe("users", budget(100, 30));
        pacer.observe("users", budget(120, 30));
        assert_eq!(pacer.lock()["users"].remaining, 100);
        pacer.observe("users", budget(599, 90));
        assert_eq!(pacer.lock()["users"].remaining, 599);
        // A 429 that names a sooner reset is believed.
        pacer.observe("users", budget(0, 2));
        assert_eq!(pacer.lock()["users"].remaining, 0);
    }

    #[tokio::test]
    async fn a_reset_beyond_the_wait_allowed_is_an_error_not_a_stall() {
        let pacer = Pacer::default();
        drop(pacer.acquire("account", MAX).await.unwrap());
        pacer.observe(
            "account",
            Budget {
                limit: 5000,
                remaining: 0,
                reset_in: Duration::from_secs(3000),
            },
        );
        let waited = pacer.acquire("account", MAX).await.err().unwrap();
        assert!(waited > MAX);
    }
}
