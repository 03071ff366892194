//! Pacing to an exact average rate.
//!
//! Event `i` is due at `start + i / rate`. Rather than sleeping once per event
//! (the OS timer's granularity would cap the rate), each call grants every
//! event that is already due, so the average rate is exact at any rate and
//! short stalls are caught up.

use std::time::{Duration, Instant};

/// Grants permission to send events at a fixed average rate.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Option<f64>,
    start: Instant,
    granted: u64,
}

/// The longest single sleep, so that cancellation stays prompt.
const MAX_SLEEP: Duration = Duration::from_millis(50);

impl RateLimiter {
    /// `rate` events per second, or `None` for as fast as possible.
    pub fn new(rate: Option<f64>) -> Self {
        RateLimiter {
            rate,
            start: Instant::now(),
            granted: 0,
        }
    }

    /// Up to `max` events that may be sent now. Returns 0 after sleeping
    /// until the next event is due (at most 50 ms).
    pub fn acquire(&mut self, max: u64) -> u64 {
        let Some(rate) = self.rate else {
            self.granted += max;
            return max;
        };
        let elapsed = self.start.elapsed().as_secs_f64();
        // Event 0 is due at t = 0.
        let due = (elapsed * rate).floor() as u64 + 1;
        if due > self.granted {
            let n = (due - self.granted).min(max);
            self.granted += n;
            return n;
        }
        let next_at = self.granted as f64 / rate;
        let wait = Duration::from_secs_f64((next_at - elapsed).max(0.0));
        std::thread::sleep(wait.min(MAX_SLEEP));
        0
    }

    /// Time since the limiter was created.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_grants_everything() {
        let mut r = RateLimiter::new(None);
        assert_eq!(r.acquire(500), 500);
    }

    #[test]
    fn never_ahead_of_schedule() {
        // Whatever the machine's load, the limiter may fall behind but never
        // grant an event before it is due.
        let mut r = RateLimiter::new(Some(2000.0));
        let mut sent = 0u64;
        while sent < 200 {
            sent += r.acquire(1000);
            let allowed = (r.elapsed().as_secs_f64() * 2000.0).floor() as u64 + 1;
            assert!(sent <= allowed, "{sent} granted, {allowed} due");
        }
    }
}
