//! Reconnect backoff: exponential with full jitter, sans IO.
//!
//! rumqttc's `poll()` reconnects immediately every time it is called, so the
//! driver asks this for how long to wait after each failed attempt. The caller
//! supplies the randomness, so tests are exact. Invariants: every delay is in
//! `[0, max]`; the ceiling doubles per failure from `base` up to `max`; a
//! successful connection ([`Backoff::reset`]) starts again from `base`.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// # Panics
    /// If `base` is zero or above `max` (a programming error).
    pub fn new(base: Duration, max: Duration) -> Backoff {
        assert!(!base.is_zero() && base <= max, "backoff base must be in (0, max]");
        Backoff { base, max, failures: 0 }
    }

    /// The ceiling for the next delay: `base * 2^failures`, capped at `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Records a failed attempt and returns how long to wait before the next:
    /// uniform in `[ceiling/2, ceiling]` given a uniform `random` (so a fleet
    /// that lost its broker together does not come back together, yet no box
    /// retries in a tight loop).
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        let span = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        let jitter = if span == 0 { 0 } else { random % (span + 1) };
        half + Duration::from_micros(jitter)
    }

    /// A connection succeeded.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(60))
    }

    #[test]
    fn the_ceiling_doubles_per_failure_up_to_the_max() {
        let mut b = backoff();
        let mut ceilings = vec![];
        for _ in 0..10 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay(0);
        }
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    }

    #[test]
    fn delays_stay_between_half_the_ceiling_and_the_ceiling() {
        let mut b = backoff();
        assert_eq!(b.next_delay(0), Duration::from_millis(250));
        let mut b = backoff();
        assert_eq!(b.next_delay(u64::MAX - 1), Duration::from_micros(250_000 + (u64::MAX - 1) % 250_001));
        let mut b = backoff();
        for i in 0..100u64 {
            let ceiling = b.ceiling();
            let d = b.next_delay(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} vs {ceiling:?}");
        }
    }

    #[test]
    fn different_random_draws_spread_the_fleet() {
        let delays: std::collections::BTreeSet<Duration> = (0..50u64)
            .map(|i| {
                let mut b = backoff();
                (0..4).for_each(|_| {
                    b.next_delay(0);
                });
                b.next_delay(i * 7919 * 1000)
            })
            .collect();
        assert!(delays.len() > 40, "{}", delays.len());
    }

    #[test]
    fn reset_starts_again_from_base_and_many_failures_do_not_overflow() {
        let mut b = backoff();
        for _ in 0..1000 {
            b.next_delay(7);
        }
        assert_eq!(b.ceiling(), Duration::from_secs(60));
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.ceiling(), Duration::from_millis(500));
    }
}
