//! Fixed-window counting per key: the request limit (`rateLimiting: {windowMs,
//! maxRequests}`, keyed on the validated principal) and the throttle of failed
//! authentications (keyed on the client address). With shared state (the `redis` option)
//! both count in Redis, one window per key across every broker; while Redis is away, or
//! without it, each server counts its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Response;

use super::callbacks::{KeyGenerator, RequestInfo};
use super::response::{Body, too_many_requests};
use crate::cluster::{Count, SharedState};
use crate::session::Principal;

/// `rateLimiting`: at most `max_requests` per `window` and key.
pub struct RateLimitConfig {
    pub window: Duration,
    pub max_requests: u64,
    pub key_generator: Option<Arc<dyn KeyGenerator>>,
}

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

    /// Counts one request for `key` unless its window is full.
    pub fn check(&self, key: &str, now: Instant) -> Decision {
        self.decide(key, now, true)
    }

    /// Whether `key`'s window is full, without counting anything.
    pub fn peek(&self, key: &str, now: Instant) -> Decision {
        self.decide(key, now, false)
    }

    /// Marks `key`'s window full for `left` more (what another count, the shared one, found).
    pub fn saturate(&self, key: &str, now: Instant, left: Duration) {
        let start = now.checked_sub(self.window.saturating_sub(left)).unwrap_or(now);
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), (start, self.max_requests));
    }

    fn decide(&self, key: &str, now: Instant, count: bool) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            // Forget finished windows so a stream of distinct keys cannot grow the map forever.
            windows.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        if !count && !windows.contains_key(key) {
            return Decision::Allowed;
        }
        let current = windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(current.0) >= self.window {
            *current = (now, 0);
        }
        if current.1 >= self.max_requests {
            return Decision::Limited(self.window.saturating_sub(now.duration_since(current.0)));
        }
        if count {
            current.1 += 1;
        }
        Decision::Allowed
    }
}

/// The key of a client address: IPv4 addresses as they are, IPv6 ones by their /64 (what
/// one subscriber usually holds), so rotating through one's own addresses gains nothing.
pub fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

fn seconds(retry_after: Duration) -> u128 {
    retry_after.as_millis().div_ceil(1000).max(1)
}

/// The `rateLimiting` step: `429 RATE_LIMITED` once the caller's window is full. The key is
/// the operator's `keyGenerator`'s, else the validated principal (never raw header text),
/// else, without authentication, the client address.
pub(super) async fn limit_requests(
    (limiter, config): (&RateLimiter, &RateLimitConfig),
    callback_timeout: Duration,
    shared: &dyn SharedState,
    info: &RequestInfo,
    principal: &Principal,
) -> Option<Response<Body>> {
    let fallback = match principal {
        Principal::Anonymous => format!("address:{}", address_key(&info.ip)),
        principal => principal.key(),
    };
    let key = match &config.key_generator {
        None => fallback,
        Some(generator) => match tokio::time::timeout(callback_timeout, generator.key(info)).await {
            Ok(Ok(key)) => key,
            _ => fallback,
        },
    };
    let decision = match shared.count("requests", &key, limiter.window(), limiter.max_requests()).await {
        Some(Count::Allowed) => Decision::Allowed,
        Some(Count::Limited(left)) => Decision::Limited(left),
        None => limiter.check(&key, Instant::now()),
    };
    match decision {
        Decision::Allowed => None,
        Decision::Limited(retry_after) => Some(too_many_requests(
            "RATE_LIMITED",
            &format!(
                "Rate limit exceeded: {} requests per {}ms",
                limiter.max_requests(),
                limiter.window().as_millis()
            ),
            seconds(retry_after),
        )),
    }
}

/// Failed authentications per client address: past `max_failures` in a window, requests
/// from that address get `429 AUTH_THROTTLED` before `validate()` runs.
pub(super) struct FailureThrottle {
    failures: RateLimiter,
}

impl FailureThrottle {
    pub fn new(window: Duration, max_failures: u64) -> FailureThrottle {
        FailureThrottle { failures: RateLimiter::new(window, max_failures) }
    }

    /// The refusal for `ip` while its failures fill the window.
    pub fn refusal(&self, ip: &str) -> Option<Response<Body>> {
        match self.failures.peek(&address_key(ip), Instant::now()) {
            Decision::Allowed => None,
            Decision::Limited(retry_after) => {
                let seconds = seconds(retry_after);
                Some(too_many_requests(
                    "AUTH_THROTTLED",
                    &format!(
                        "Too many failed authentication attempts from this address; retry in {seconds}s"
                    ),
                    seconds,
                ))
            }
        }
    }

    /// Counts a failure of `ip`, here and (with shared state) across brokers: once the
    /// shared count is past the limit, this server refuses the address too.
    pub async fn record_failure(&self, shared: &dyn SharedState, ip: &str) {
        let key = address_key(ip);
        self.failures.check(&key, Instant::now());
        let (window, max) = (self.failures.window(), self.failures.max_requests());
        if let Some(Count::Limited(left)) = shared.count("auth-failures", &key, window, max).await {
            self.failures.saturate(&key, Instant::now(), left);
        }
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

    #[test]
    fn peeking_counts_nothing() {
        let limiter = RateLimiter::new(Duration::from_millis(1000), 1);
        let t0 = Instant::now();
        assert_eq!(limiter.peek("a", t0), Decision::Allowed);
        assert_eq!(limiter.peek("a", t0), Decision::Allowed);
        assert_eq!(limiter.check("a", t0), Decision::Allowed);
        assert_eq!(limiter.peek("a", t0), Decision::Limited(Duration::from_millis(1000)));
        assert_eq!(limiter.peek("a", t0 + Duration::from_millis(1000)), Decision::Allowed);
    }

    #[test]
    fn a_saturated_window_refuses_for_what_is_left() {
        let limiter = RateLimiter::new(Duration::from_millis(1000), 3);
        let t0 = Instant::now() + Duration::from_secs(5);
        limiter.saturate("a", t0, Duration::from_millis(300));
        assert_eq!(limiter.peek("a", t0), Decision::Limited(Duration::from_millis(300)));
        assert_eq!(limiter.check("a", t0 + Duration::from_millis(300)), Decision::Allowed);
    }

    #[test]
    fn addresses_key_ipv6_by_prefix() {
        assert_eq!(address_key("10.0.0.7"), "10.0.0.7");
        assert_eq!(address_key("::ffff:10.0.0.7"), "10.0.0.7");
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), address_key("2001:db8:1:2:bbbb::9"));
        assert_ne!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
    }
}
