//! Request rate limits: token buckets (governor's GCRA) per client IP, per signed-in user,
//! and a stricter one per client IP on registration (failed sign-ins are limited by
//! [`crate::sign_in_guard`]). A request over any of them
//! gets 429 with `Retry-After`; every limited response carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` of the tightest bucket that applied.
//! Health probes and `/metrics` are never limited. Buckets idle long enough to be full again
//! are forgotten every minute, so memory follows the active clients only.
//!
//! With [`SharedBuckets`] (Redis, for many instances) the buckets live there, checked in one
//! round trip per request, so N instances allow what one would. When it cannot answer, the
//! in-process buckets take over (logged once, counted in `rate_limit_fallback_total`): never
//! all traffic refused, never all let through.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{NotUntil, Quota, RateLimiter};
use quire_domain::UserId;
use quire_serve::PeerAddr;

use crate::client_ip::{ClientIp, TrustedProxies};
use crate::extract::{VerifiedToken, token_from};
use crate::sign_in_guard::{SignInGuard, SignInLimits};
use crate::{ApiError, AppState};

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// A sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests replenished per `period`.
    pub count: u32,
    pub period: Duration,
    /// Requests that may arrive at once after a quiet spell.
    pub burst: u32,
}

impl Rate {
    pub fn per_second(count: u32, burst: u32) -> Option<Self> {
        Self::new(count, Duration::from_secs(1), burst)
    }

    pub fn per_minute(count: u32, burst: u32) -> Option<Self> {
        Self::new(count, Duration::from_secs(60), burst)
    }

    /// `None` (no limit) when `count` is 0.
    fn new(count: u32, period: Duration, burst: u32) -> Option<Self> {
        (count > 0).then_some(Self {
            count,
            period,
            burst: burst.max(1),
        })
    }

    fn quota(self) -> Quota {
        let interval = self.period / self.count;
        Quota::with_period(interval.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(NonZeroU32::new(self.burst).expect("burst is at least 1"))
    }
}

/// Which limits apply; `None` turns one off.
#[derive(Debug, Clone, Default)]
pub struct RateLimitConfig {
    pub per_ip: Option<Rate>,
    pub per_user: Option<Rate>,
    /// Registrations, per client IP.
    pub auth: Option<Rate>,
    /// Failed sign-ins, per account and per client IP.
    pub sign_in: SignInLimits,
    pub trusted_proxies: TrustedProxies,
}

/// What a shared bucket answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedAnswer {
    pub allowed: bool,
    pub remaining: u32,
    /// Allowed: until the bucket is full again; refused: until its next token.
    pub wait: Duration,
}

/// Buckets kept outside the process, shared by every instance.
#[async_trait]
pub trait SharedBuckets: Send + Sync + 'static {
    /// Checks the buckets named `key` with their `Rate`s in order, in one go, taking a token
    /// from each until one refuses; the answers of those checked. `Err`: cannot answer now.
    async fn check(&self, buckets: &[(String, Rate)]) -> Result<Vec<SharedAnswer>, String>;

    /// Fixed-window counters: each key's count in its window of length `window` (started by
    /// its first count) and the time left of it, after adding one to each when `add`.
    async fn count(
        &self,
        keys: &[String],
        add: bool,
        window: Duration,
    ) -> Result<Vec<(u64, Duration)>, String>;
}

/// Whom a bucket counts.
#[derive(Debug, Clone, Copy)]
enum Subject {
    Ip(IpAddr),
    User(UserId),
}

type Limiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// The buckets, shared by every request.
pub struct RateLimits {
    per_ip: Option<Limiter<IpAddr>>,
    per_user: Option<Limiter<UserId>>,
    auth: Option<Limiter<IpAddr>>,
    /// The rates (for the shared buckets) and the trusted proxies.
    config: RateLimitConfig,
    clock: DefaultClock,
    shared: Option<Arc<dyn SharedBuckets>>,
    /// The shared buckets did not answer last time: the in-process ones are in use.
    falling_back: AtomicBool,
    /// Failed sign-ins, counted by the login handler.
    pub sign_in: SignInGuard,
}

fn limiter<K: Hash + Eq + Clone>(rate: Option<Rate>) -> Option<Limiter<K>> {
    rate.map(|rate| {
        RateLimiter::keyed(rate.quota()).with_middleware::<StateInformationMiddleware>()
    })
}

/// What one bucket said.
enum Verdict {
    Allowed {
        limit: u32,
        remaining: u32,
        reset: Duration,
    },
    Refused {
        limit: u32,
        retry_after: Duration,
    },
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Arc<Self> {
        Self::with_shared(config, None)
    }

    /// Limits whose buckets live in `shared` (the in-process ones are the fallback).
    pub fn with_shared(
        config: RateLimitConfig,
        shared: Option<Arc<dyn SharedBuckets>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            per_ip: limiter(config.per_ip),
            per_user: limiter(config.per_user),
            auth: limiter(config.auth),
            config: config.clone(),
            clock: DefaultClock::default(),
            sign_in: SignInGuard::new(config.sign_in, shared.clone()),
            shared,
            falling_back: AtomicBool::new(false),
        })
    }

    /// Checks the buckets `checks` name, in order, stopping at the first refusal: in the
    /// shared store when there is one and it answers, else in process.
    async fn check_all(&self, checks: &[(&'static str, Subject)]) -> Vec<Verdict> {
        if checks.is_empty() {
            return Vec::new();
        }
        if let Some(shared) = &self.shared {
            let buckets: Vec<(String, Rate)> = checks
                .iter()
                .filter_map(|(name, subject)| {
                    let key = match subject {
                        Subject::Ip(ip) => format!("{name}:{ip}"),
                        Subject::User(user) => format!("{name}:{user}"),
                    };
                    Some((key, self.rate(name)?))
                })
                .collect();
            match shared.check(&buckets).await {
                Ok(answers) => {
                    if self.falling_back.swap(false, Ordering::Relaxed) {
                        tracing::info!("rate limits are shared again");
                    }
                    return answers
                        .into_iter()
                        .zip(&buckets)
                        .map(|(answer, (_, rate))| shared_verdict(answer, *rate))
                        .collect();
                }
                Err(error) => {
                    metrics::counter!("rate_limit_fallback_total").increment(1);
                    if !self.falling_back.swap(true, Ordering::Relaxed) {
                        tracing::warn!(%error, "shared rate limits unavailable; each instance limits on its own until they are back");
                    }
                }
            }
        }
        let mut verdicts = Vec::with_capacity(checks.len());
        for (name, subject) in checks {
            let verdict = match (subject, *name) {
                (Subject::Ip(ip), "auth") => self.auth.as_ref().map(|l| self.check(l, ip)),
                (Subject::Ip(ip), _) => self.per_ip.as_ref().map(|l| self.check(l, ip)),
                (Subject::User(user), _) => self.per_user.as_ref().map(|l| self.check(l, user)),
            };
            let Some(verdict) = verdict else { continue };
            let refused = matches!(verdict, Verdict::Refused { .. });
            verdicts.push(verdict);
            if refused {
                break;
            }
        }
        verdicts
    }

    fn rate(&self, name: &str) -> Option<Rate> {
        match name {
            "ip" => self.config.per_ip,
            "auth" => self.config.auth,
            _ => self.config.per_user,
        }
    }

    /// Forgets full buckets every minute, for as long as the limits exist.
    pub fn spawn_housekeeping(self: &Arc<Self>) {
        let limits: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limits) = limits.upgrade() else {
                    return;
                };
                limits.forget_full_buckets();
            }
        });
    }

    fn forget_full_buckets(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_user {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.auth {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.sign_in.forget_ended();
    }

    fn check<K: Hash + Eq + Clone>(&self, limiter: &Limiter<K>, key: &K) -> Verdict {
        match limiter.check_key(key) {
            Ok(snapshot) => allowed(&snapshot),
            Err(not_until) => self.refused(&not_until),
        }
    }

    fn refused(&self, not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> Verdict {
        Verdict::Refused {
            limit: not_until.quota().burst_size().get(),
            retry_after: not_until.wait_time_from(self.clock.now()),
        }
    }
}

fn shared_verdict(answer: SharedAnswer, rate: Rate) -> Verdict {
    if answer.allowed {
        Verdict::Allowed {
            limit: rate.burst,
            remaining: answer.remaining,
            reset: answer.wait,
        }
    } else {
        Verdict::Refused {
            limit: rate.burst,
            retry_after: answer.wait,
        }
    }
}

fn allowed(snapshot: &StateSnapshot) -> Verdict {
    let quota = snapshot.quota();
    let limit = quota.burst_size().get();
    let remaining = snapshot.remaining_burst_capacity();
    Verdict::Allowed {
        limit,
        remaining,
        reset: quota.replenish_interval() * (limit - remaining),
    }
}

/// Whether a request is exempt: probes and scrapes must keep working under any load.
fn exempt(path: &str) -> bool {
    path.starts_with("/health/") || path == "/metrics" || path.starts_with("/assets/")
}

/// Sign-ups, through the API or the web form.
fn is_registration(method: &Method, path: &str) -> bool {
    method == Method::POST && (path == "/api/users" || path == "/register")
}

fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn set_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset: Duration) {
    headers.insert(LIMIT, HeaderValue::from(limit));
    headers.insert(REMAINING, HeaderValue::from(remaining));
    headers.insert(RESET, HeaderValue::from(whole_seconds(reset)));
}

/// The middleware: attributes the request to its client IP (trusted proxies considered),
/// then checks the buckets that apply.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let limits = &state.rate_limits;
    let client = request.extensions().get::<PeerAddr>().map(|peer| {
        limits
            .config
            .trusted_proxies
            .client_ip(peer.0.ip(), request.headers())
    });
    if let Some(ip) = client {
        request.extensions_mut().insert(ClientIp(ip));
    }
    let path = request.uri().path();
    if exempt(path) {
        return next.run(request).await;
    }
    let mut checks: Vec<(&'static str, Subject)> = Vec::with_capacity(3);
    if let Some(ip) = client {
        if limits.per_ip.is_some() {
            checks.push(("ip", Subject::Ip(ip)));
        }
        if limits.auth.is_some() && is_registration(request.method(), path) {
            checks.push(("auth", Subject::Ip(ip)));
        }
    }
    let user = limits
        .per_user
        .is_some()
        .then(|| token_from(request.headers()).ok().flatten())
        .flatten()
        .and_then(|token| state.app.tokens.verify(token).ok());
    if let Some(user) = user {
        checks.push(("user", Subject::User(user)));
    }
    let mut tightest = Tightest::default();
    for ((name, _), verdict) in checks.iter().zip(limits.check_all(&checks).await) {
        if let Some(refused) = tightest.note(name, verdict) {
            return refused;
        }
    }
    if let Some(user) = user {
        // The extractors reuse this check instead of verifying the signature again.
        request.extensions_mut().insert(VerifiedToken(user));
    }
    let mut response = next.run(request).await;
    if let Some((limit, remaining, reset)) = tightest.0 {
        set_headers(response.headers_mut(), limit, remaining, reset);
    }
    response
}

/// The bucket with the least capacity left among those a request passed: the one whose
/// figures the `X-RateLimit-*` headers report.
#[derive(Default)]
struct Tightest(Option<(u32, u32, Duration)>);

impl Tightest {
    /// Records one bucket's verdict; a refusal comes back as the 429 to answer with.
    fn note(&mut self, limit_name: &'static str, verdict: Verdict) -> Option<Response> {
        match verdict {
            Verdict::Allowed {
                limit,
                remaining,
                reset,
            } => {
                if self.0.is_none_or(|(_, r, _)| remaining < r) {
                    self.0 = Some((limit, remaining, reset));
                }
                None
            }
            Verdict::Refused { limit, retry_after } => {
                Some(too_many(limit_name, limit, retry_after))
            }
        }
    }
}

fn too_many(limit_name: &'static str, limit: u32, retry_after: Duration) -> Response {
    metrics::counter!("http_rate_limited_total", "limit" => limit_name).increment(1);
    let retry_after = retry_after.max(Duration::from_secs(1));
    let mut response = ApiError::too_many_requests(whole_seconds(retry_after)).into_response();
    set_headers(response.headers_mut(), limit, 0, retry_after);
    debug_assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_a_limit_off() {
        assert_eq!(Rate::per_second(0, 10), None);
        assert_eq!(Rate::per_minute(5, 0).unwrap().burst, 1);
    }

    #[test]
    fn a_bucket_refuses_past_its_burst_and_says_when_to_retry() {
        let limits = RateLimits::new(RateLimitConfig {
            per_ip: Rate::per_minute(6, 3),
            ..RateLimitConfig::default()
        });
        let limiter = limits.per_ip.as_ref().unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let remaining: Vec<u32> = (0..3)
            .map(|_| match limits.check(limiter, &ip) {
                Verdict::Allowed { remaining, .. } => remaining,
                Verdict::Refused { .. } => panic!("refused within the burst"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        match limits.check(limiter, &ip) {
            Verdict::Refused { limit, retry_after } => {
                assert_eq!(limit, 3);
                assert!(
                    retry_after > Duration::from_secs(8) && retry_after <= Duration::from_secs(10)
                );
            }
            Verdict::Allowed { .. } => panic!("allowed past the burst"),
        }
        // Another client has its own bucket.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(matches!(
            limits.check(limiter, &other),
            Verdict::Allowed { .. }
        ));
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 0);
    }
}
