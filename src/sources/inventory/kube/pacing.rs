//! How the agents of one cluster spread their requests over time (docs/design.md §7): a DaemonSet restarted at
//! once must not reach the API server in step, neither at start-up nor when it retries.
//!
//! - [`start_delay`]: a bounded delay before the first request, derived from the node name, so the agents of a
//!   DaemonSet started together spread their first lists evenly over the window, and one node keeps its slot.
//! - [`Backoff`]: retries after a failure wait an exponentially growing, jittered time (1 s doubling to 30 s,
//!   each wait drawn from half to one and a half of it), reset only once the watch has delivered again.
//!   kube-rs's default resets its backoff at every list attempt and its client retries 429s exactly at the
//!   server's `Retry-After`, which keeps a DaemonSet's agents in lock-step; both are replaced.
//! - [`RateLimit`]: a token bucket for the requests made on demand (fetches).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::time::Duration;

use tokio::time::Instant;

/// The first retry waits about this long.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// Retries wait at most this long (plus jitter).
const BACKOFF_CEILING: Duration = Duration::from_secs(30);

/// A small random number generator (SplitMix64); jitter needs spread, not cryptographic quality.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    /// Seeded from the process's random hasher keys: different in every agent.
    pub(crate) fn random() -> Jitter {
        Jitter(RandomState::new().hash_one(std::process::id()))
    }

    /// A number in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        unit_of(mix(self.0))
    }
}

/// SplitMix64's finalizer: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The top 53 bits as a number in [0, 1).
fn unit_of(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The delay before this node's agent first asks the API anything: an even spread of `window` by a hash of
/// the node name (FNV-1a, the same on every build), so a restarted DaemonSet's lists arrive spread out, and a
/// node keeps its slot across restarts.
pub(crate) fn start_delay(node: &str, window: Duration) -> Duration {
    if window.is_zero() {
        return Duration::ZERO;
    }
    let mut hash = Fnv1a::default();
    node.hash(&mut hash);
    // FNV leaves the high bits of similar names (node-1, node-2, ...) alike; the finalizer spreads them.
    window.mul_f64(unit_of(mix(hash.finish())))
}

/// FNV-1a: a hash whose value does not change between builds or processes (std's does).
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Exponential backoff with jitter, reset by the caller when the failing thing works again.
#[derive(Debug)]
pub(crate) struct Backoff {
    failures: u32,
    jitter: Jitter,
}

impl Backoff {
    pub(crate) fn new(jitter: Jitter) -> Backoff {
        Backoff { failures: 0, jitter }
    }

    /// How long to wait after one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = BACKOFF_FIRST.saturating_mul(1 << self.failures.min(16)).min(BACKOFF_CEILING);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(0.5 + self.jitter.unit())
    }

    /// The next failure starts again from the first delay.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug)]
pub(crate) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(crate) fn new(rate: f64, burst: u32) -> RateLimit {
        RateLimit { rate, burst: f64::from(burst), tokens: f64::from(burst), last: Instant::now() }
    }

    /// Takes one token, waiting until there is one.
    pub(crate) async fn acquire(&mut self) {
        loop {
            let now = Instant::now();
            self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            tokio::time::sleep(Duration::from_secs_f64((1.0 - self.tokens) / self.rate)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_delays_spread_nodes_over_the_window_and_keep_each_node_in_its_slot() {
        let window = Duration::from_secs(10);
        let delays: Vec<Duration> = (0..1000).map(|i| start_delay(&format!("node-{i}"), window)).collect();
        assert!(delays.iter().all(|d| *d < window));
        let per_second = |s: u64| delays.iter().filter(|d| d.as_secs() == s).count();
        assert!(
            (0..10).all(|s| (60..=140).contains(&per_second(s))),
            "{:?}",
            (0..10).map(per_second).collect::<Vec<_>>()
        );
        assert_eq!(start_delay("node-7", window), start_delay("node-7", window));
        assert_eq!(start_delay("node-7", Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_to_its_ceiling_with_jitter_and_starts_over_after_a_reset() {
        let mut backoff = Backoff::new(Jitter(7));
        let delays: Vec<f64> = (0..8).map(|_| backoff.next_delay().as_secs_f64()).collect();
        for (n, delay) in delays.iter().enumerate() {
            let ceiling = (1u64 << n).min(30) as f64;
            assert!((0.5 * ceiling..1.5 * ceiling).contains(delay), "failure {n}: {delay}");
        }
        backoff.reset();
        assert!(backoff.next_delay() < Duration::from_millis(1500));
    }

    #[test]
    fn agents_that_fail_together_retry_apart() {
        let first: Vec<f64> = (0..50).map(|i| Backoff::new(Jitter(i)).next_delay().as_secs_f64()).collect();
        let in_slot = |slot: u64| first.iter().filter(|d| (**d * 10.0) as u64 == slot).count();
        assert!((5..15).all(|slot| in_slot(slot) <= 12), "no 100 ms slot holds a quarter of them: {first:?}");
        let spread = first.iter().cloned().fold(f64::MIN, f64::max) - first.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 0.8, "{first:?}");
    }

    #[tokio::test]
    async fn the_rate_limit_lets_a_burst_through_then_paces() {
        let mut limit = RateLimit::new(100.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limit.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(20));
        for _ in 0..10 {
            limit.acquire().await;
        }
        let paced = start.elapsed().as_secs_f64();
        assert!((0.09..0.5).contains(&paced), "{paced}");
    }
}
