//! Password hashing with argon2id, off the async threads.
//!
//! Hashing is deliberately slow (tens of milliseconds of CPU), so it runs on tokio's blocking
//! pool and at most `concurrency` hashes run at once: a storm of logins queues here instead of
//! starving every other request of CPU, and past `queue` waiting callers the next one is
//! turned away at once ([`AppError::Overloaded`], 503) instead of waiting without bound. A login for an unknown email still verifies against a
//! dummy hash, so response time does not reveal which emails have accounts.
//!
//! argon2's working memory (19 MiB per hash by default) is a fresh anonymous mapping per hash,
//! unmapped when the hash is done ([`scratch`]): an allocator would keep those pages after the
//! first sign-in, and an idle quire would hold them for good.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use quire_domain::Password;
use tokio::sync::Semaphore;

use crate::{AppError, AppResult};

mod scratch;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy)]
pub struct PasswordHashing {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Hashes allowed to run at once.
    pub concurrency: usize,
    /// Callers allowed to wait for a turn; past it, [`AppError::Overloaded`].
    pub queue: usize,
}

impl Default for PasswordHashing {
    /// OWASP's recommended argon2id setting (19 MiB, 2 passes, 1 lane).
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            concurrency: 2,
            queue: 256,
        }
    }
}

/// Hashes and verifies passwords on the blocking pool, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Callers waiting for a permit, against `queue`.
    waiting: Arc<AtomicUsize>,
    queue: usize,
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(settings: PasswordHashing) -> AppResult<Self> {
        let params = Params::new(settings.memory_kib, settings.iterations, 1, None)
            .map_err(|e| AppError::Internal(format!("bad argon2 parameters: {e}")))?;
        let dummy_hash = dummy_hash(&params)?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue: settings.queue,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// A PHC string (`$argon2id$v=19$...`) for the password.
    pub async fn hash(&self, password: Password) -> AppResult<String> {
        let params = self.params.clone();
        self.run(move || hash_blocking(&params, password.expose()))
            .await?
    }

    /// Whether the password matches `hash`; `None` checks against a dummy to spend equal time.
    pub async fn verify(&self, password: Password, hash: Option<String>) -> AppResult<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self
            .run(move || verify_blocking(&hash, password.expose()))
            .await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                let _waiting = Waiting::join(&self.waiting, self.queue)?;
                self.permits
                    .acquire()
                    .await
                    .map_err(|_| AppError::Overloaded)?
            }
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::Internal(format!("password task failed: {e}")))
    }
}

/// A place in the queue for a hashing permit, given back on drop (also when the waiting
/// request is abandoned).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn join(waiting: &'a AtomicUsize, queue: usize) -> AppResult<Self> {
        let joined = waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < queue).then_some(n + 1)
            })
            .is_ok();
        if !joined {
            metrics::counter!("password_hash_shed_total").increment(1);
            return Err(AppError::Overloaded);
        }
        metrics::gauge!("password_hash_waiting").increment(1.0);
        Ok(Self(waiting))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("password_hash_waiting").decrement(1.0);
    }
}

/// A well-formed hash with `params` that no password matches (its output is all zeros, which
/// argon2 does not produce in practice): verifying against it costs what a real check does,
/// and making it costs nothing (no hash is computed at start-up).
fn dummy_hash(params: &Params) -> AppResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    phc_string(params, &salt, &[0; Params::DEFAULT_OUTPUT_LEN])
}

/// A PHC string for `password`: argon2id with `params` and a fresh random salt.
fn hash_blocking(params: &Params, password: &str) -> AppResult<String> {
    let failed =
        |e: &dyn std::fmt::Display| AppError::Internal(format!("cannot hash password: {e}"));
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let mut memory = scratch::Blocks::new(params.block_count()).map_err(|e| failed(&e))?;
    argon
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, &mut memory)
        .map_err(|e| failed(&e))?;
    drop(memory);
    phc_string(params, &salt, &out)
}

/// `$argon2id$v=19$m=..,t=..,p=..$SALT$OUTPUT`: the PHC string of an argon2id output.
fn phc_string(params: &Params, salt: &SaltString, output: &[u8]) -> AppResult<String> {
    let bad = |e: argon2::password_hash::Error| AppError::Internal(format!("bad PHC string: {e}"));
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params.try_into().map_err(bad)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(output).map_err(bad)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (any argon2 variant, version and cost it
/// names). A hash that does not parse matches nothing. The comparison of the outputs is
/// constant-time (`Output`'s equality).
fn verify_blocking(hash: &str, password: &str) -> bool {
    let check = || -> Result<bool, Box<dyn std::error::Error>> {
        let parsed = PasswordHash::new(hash)?;
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let mut out = vec![0u8; expected.len()];
        let mut memory = scratch::Blocks::new(params.block_count())?;
        Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            &mut memory,
        )?;
        Ok(Output::new(&out)? == expected)
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(PasswordHashing {
            memory_kib: 64,
            iterations: 1,
            concurrency: 2,
            queue: 8,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn past_the_queue_callers_are_turned_away_at_once() {
        let hasher = PasswordHasher::new(PasswordHashing {
            memory_kib: 64,
            iterations: 1,
            concurrency: 1,
            queue: 1,
        })
        .unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let busy = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(move || gate.recv().is_ok()).await })
        };
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(|| true).await })
        };
        while hasher.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            hasher.run(|| true).await,
            Err(AppError::Overloaded)
        ));
        release.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        assert!(queued.await.unwrap().unwrap());
        assert_eq!(hasher.waiting.load(Ordering::SeqCst), 0);
        assert!(hasher.run(|| true).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_and_verifies() {
        let hasher = cheap();
        let pw = Password::parse("correct horse").unwrap();
        let hash = hasher.hash(pw.clone()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify(pw, Some(hash.clone())).await.unwrap());
        let wrong = Password::parse("wrong horse").unwrap();
        assert!(!hasher.verify(wrong, Some(hash)).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let params = Params::new(19 * 1024, 2, 1, None).unwrap();
        let dummy = dummy_hash(&params).unwrap();
        let real = hash_blocking(&params, "anything").unwrap();
        let (dummy, real) = (
            PasswordHash::new(&dummy).unwrap(),
            PasswordHash::new(&real).unwrap(),
        );
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
    }

    #[test]
    fn hashes_match_the_argon2_crates_own_phc_strings() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(256, 2, 1, None).unwrap();
        // Ours verifies with the crate's verifier...
        let ours = hash_blocking(&params, "correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // ...and hashes stored by earlier versions (the crate's hasher) verify with ours.
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = argon
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking(&theirs, "correct horse"));
        assert!(!verify_blocking(&theirs, "correct horsf"));
        assert!(!verify_blocking("not a hash", "correct horse"));
        assert!(!verify_blocking(
            "$argon2id$v=19$m=256,t=2,p=1$c2FsdHNhbHQ$",
            "x"
        ));
    }

    #[tokio::test]
    async fn unknown_user_never_verifies() {
        let hasher = cheap();
        let pw = Password::parse("not-a-real-password").unwrap();
        assert!(!hasher.verify(pw, None).await.unwrap());
    }
}
