//! Limits that stop password guessing without getting in the way of people and test suites:
//! *failed* sign-ins are counted per account (email) and per client address in fixed windows;
//! once either count reaches its limit, further sign-ins for that account or from that
//! address get 429 until the window ends. Successful sign-ins are never counted, so a test
//! suite signing in hundreds of times is unaffected, while the 11th wrong password for one
//! account (by default) is refused.
//!
//! The counters live in the shared store when there is one ([`SharedBuckets`]: Redis, so a
//! guesser cannot multiply attempts by the number of instances), else in process; when the
//! shared store does not answer, the in-process counters take over.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quire_app::{App, AppError, AuthFailure, LoginInput, SignedInUser};

use crate::rate_limit::SharedBuckets;

/// Why a guarded sign-in did not succeed.
#[derive(Debug)]
pub enum SignInError {
    /// Too many failures for this account or address: try again after this long.
    TooMany(Duration),
    /// The use case's own answer (wrong credentials, invalid input, overload).
    App(AppError),
}

/// Limits on failed sign-ins (0 turns one off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    pub per_account: u32,
    pub per_ip: u32,
    pub window: Duration,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            per_account: 10,
            per_ip: 30,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Failed sign-in counters.
pub struct SignInGuard {
    limits: SignInLimits,
    local: Mutex<HashMap<String, (u32, Instant)>>,
    shared: Option<Arc<dyn SharedBuckets>>,
}

impl SignInGuard {
    pub fn new(limits: SignInLimits, shared: Option<Arc<dyn SharedBuckets>>) -> Self {
        Self {
            limits,
            local: Mutex::new(HashMap::new()),
            shared,
        }
    }

    /// The counters that apply to a sign-in as `email` from `ip`, with their limits.
    fn keys(&self, ip: Option<IpAddr>, email: &str) -> Vec<(String, u32)> {
        let mut keys = Vec::with_capacity(2);
        if self.limits.per_account > 0 {
            keys.push((
                format!("signin:account:{}", email.trim().to_lowercase()),
                self.limits.per_account,
            ));
        }
        if let Some(ip) = ip
            && self.limits.per_ip > 0
        {
            keys.push((format!("signin:ip:{ip}"), self.limits.per_ip));
        }
        keys
    }

    /// Signs in through `app` unless the account or address is over its limit; a wrong
    /// password counts against both. What the API's login and the web's sign-in form share.
    pub async fn sign_in(
        &self,
        app: &App,
        ip: Option<IpAddr>,
        input: LoginInput,
    ) -> Result<SignedInUser, SignInError> {
        let email = input.email.clone().unwrap_or_default();
        if let Some(wait) = self.refusal(ip, &email).await {
            metrics::counter!("http_rate_limited_total", "limit" => "sign_in").increment(1);
            return Err(SignInError::TooMany(wait));
        }
        let signed_in = app.login(input).await;
        if matches!(
            signed_in,
            Err(AppError::Unauthorized(AuthFailure::BadCredentials))
        ) {
            self.failed(ip, &email).await;
        }
        signed_in.map_err(SignInError::App)
    }

    /// `Some(wait)` when a sign-in as `email` from `ip` must be refused for `wait`.
    pub async fn refusal(&self, ip: Option<IpAddr>, email: &str) -> Option<Duration> {
        let keys = self.keys(ip, email);
        if keys.is_empty() {
            return None;
        }
        let counts = self.counts(&keys, false).await;
        keys.iter()
            .zip(counts)
            .filter(|((_, limit), (count, _))| *count >= u64::from(*limit))
            .map(|(_, (_, left))| left.max(Duration::from_secs(1)))
            .max()
    }

    /// Counts a failed sign-in as `email` from `ip`.
    pub async fn failed(&self, ip: Option<IpAddr>, email: &str) {
        let keys = self.keys(ip, email);
        if !keys.is_empty() {
            metrics::counter!("sign_in_failures_total").increment(1);
            self.counts(&keys, true).await;
        }
    }

    /// Each key's count in its current window and the time left of that window, after
    /// adding one when `add`.
    async fn counts(&self, keys: &[(String, u32)], add: bool) -> Vec<(u64, Duration)> {
        let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        if let Some(shared) = &self.shared {
            match shared.count(&names, add, self.limits.window).await {
                Ok(counts) => return counts,
                Err(error) => {
                    metrics::counter!("rate_limit_fallback_total").increment(1);
                    tracing::debug!(%error, "shared sign-in counters unavailable; counting here");
                }
            }
        }
        let now = Instant::now();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        names
            .into_iter()
            .map(|name| {
                let entry = local.entry(name).or_insert((0, now + self.limits.window));
                if entry.1 <= now {
                    *entry = (0, now + self.limits.window);
                }
                if add {
                    entry.0 += 1;
                }
                (u64::from(entry.0), entry.1 - now)
            })
            .collect()
    }

    /// Forgets windows that have ended (called every minute).
    pub fn forget_ended(&self) {
        let now = Instant::now();
        let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
        local.retain(|_, (_, ends)| *ends > now);
        local.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_failures_count_and_the_limit_holds_per_account_and_address() {
        let guard = SignInGuard::new(
            SignInLimits {
                per_account: 3,
                per_ip: 5,
                window: Duration::from_secs(60),
            },
            None,
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(guard.refusal(Some(ip), "Jake@Example.com").await, None);
            guard.failed(Some(ip), "jake@example.com").await;
        }
        let wait = guard.refusal(Some(ip), "jake@example.com").await.unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        // Another account from the same address: still allowed until the address's limit.
        assert_eq!(guard.refusal(Some(ip), "anna@example.com").await, None);
        guard.failed(Some(ip), "anna@example.com").await;
        guard.failed(Some(ip), "anna@example.com").await;
        assert!(guard.refusal(Some(ip), "bob@example.com").await.is_some());
        // Another address for another account is untouched.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(guard.refusal(Some(other), "bob@example.com").await, None);
    }
}
