//! Fixed-window counting per key: the request limit (`rateLimiting: {windowMs,
//! maxRequests}`, keyed on the validated principal) and the throttle of failed
//! authentications (keyed on the client address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::Response;

use super::callbacks::RequestInfo;
use super::response::{Body, too_many_requests};
use super::server::ServerState;
use crate::session::Principal;

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
    state: &ServerState,
    info: &RequestInfo,
    principal: &Principal,
) -> Option<Response<Body>> {
    let (Some(limiter), Some(config)) = (&state.limiter, &state.config.rate_limit) else { return None };
    let fallback = match principal {
        Principal::Anonymous => format!("address:{}", address_key(&info.ip)),
        principal => principal.key(),
    };
    let key = match &config.key_generator {
        None => fallback,
        Some(generator) => {
            match tokio::time::timeout(state.config.callback_timeout, generator.key(info)).await {
                Ok(Ok(key)) => key,
                _ => fallback,
            }
        }
    };
    match limiter.check(&key, Instant::now()) {
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

    pub fn record_failure(&self, ip: &str) {
        self.failures.check(&address_key(ip), Instant::now());
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
    fn addresses_key_ipv6_by_prefix() {
        assert_eq!(address_key("10.0.0.7"), "10.0.0.7");
        assert_eq!(address_key("::ffff:10.0.0.7"), "10.0.0.7");
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), address_key("2001:db8:1:2:bbbb::9"));
        assert_ne!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
    }
}
