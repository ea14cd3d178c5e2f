//! Fixed-window request limiting per key (`rateLimiting: {windowMs, maxRequests}`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    window: Duration,
    max_requests: u64,
    windows: Mutex<HashMap<String, (Instant, u64)>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Rejected; retry after this long (the rest of the key's window).
    Limited(Duration),
}

impl RateLimiter {
    pub fn new(window: Duration, max_requests: u64) -> RateLimiter {
        RateLimiter { window, max_requests, windows: Mutex::new(HashMap::new()) }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn max_requests(&self) -> u64 {
        self.max_requests
    }

    pub fn check(&self, key: &str, now: Instant) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            // Forget finished windows so a stream of distinct keys cannot grow the map forever.
            windows.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.max_requests {
            return Decision::Limited(self.window.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Decision::Allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_resets_after_the_window() {
        let limiter = RateLimiter::new(Duration::from_millis(1000), 2);
        let t0 = Instant::now();
        assert_eq!(limiter.check("a", t0), Decision::Allowed);
        assert_eq!(limiter.check("a", t0), Decision::Allowed);
        assert_eq!(limiter.check("b", t0), Decision::Allowed);
        assert_eq!(
            limiter.check("a", t0 + Duration::from_millis(400)),
            Decision::Limited(Duration::from_millis(600))
        );
        assert_eq!(limiter.check("a", t0 + Duration::from_millis(1000)), Decision::Allowed);
    }
}
