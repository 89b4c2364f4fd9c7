//! The seam between one instance's caches and the others': [`Coherence`]. A write announces
//! what it invalidated before it is acknowledged; a request asks, once, whether this
//! instance's caches may serve it ([`Coherence::fence`]), and reads the store instead when
//! they may not. [`Standalone`] (one instance) always answers yes and announces nothing.
//!
//! The answer is memoised per request: [`request_scope`] wraps a request's future, and every
//! [`crate::ExactCache`] read inside it asks [`admitted`], which calls the fence at most once
//! (each cache is given the instance's coherence when it is built).
//! A fence taken when the request began covers every write acknowledged before it began, which
//! is the promise (a client reads its own writes, and what others wrote before it asked).

use std::cell::Cell;
use std::future::Future;

use async_trait::async_trait;

/// The other instances could not be told of a write (Redis unreachable past its retries).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot reach the other instances: {0}")]
pub struct Unannounced(pub String);

/// Keeps the caches of every instance exact.
#[async_trait]
pub trait Coherence: Send + Sync + 'static {
    /// Whether this instance's caches may serve a request that starts now: `true` once every
    /// invalidation announced (by any instance) before this call has been applied here.
    async fn fence(&self) -> bool;
    /// Delivers `invalidation` (opaque bytes the application encodes) to every instance; on
    /// `Ok`, any fence taken afterwards on any instance waits for it to be applied there.
    async fn announce(&self, invalidation: Vec<u8>) -> Result<(), Unannounced>;
    /// Whether the other instances can be reached now (readiness).
    async fn ready(&self) -> bool {
        true
    }
    /// True for [`Standalone`]: no fence, nothing to announce.
    fn is_standalone(&self) -> bool {
        false
    }
}

/// One instance alone: its caches are always exact.
pub struct Standalone;

#[async_trait]
impl Coherence for Standalone {
    async fn fence(&self) -> bool {
        true
    }
    async fn announce(&self, _invalidation: Vec<u8>) -> Result<(), Unannounced> {
        Ok(())
    }
    fn is_standalone(&self) -> bool {
        true
    }
}

tokio::task_local! {
    static ADMITTED: Cell<Option<bool>>;
}

/// A request's future running with its own memo of the fence's answer.
pub type RequestScoped<F> = tokio::task::futures::TaskLocalFuture<Cell<Option<bool>>, F>;

/// Runs a request with its own memo of the fence's answer.
pub fn request_scope<F: Future>(request: F) -> RequestScoped<F> {
    ADMITTED.scope(Cell::new(None), request)
}

/// Whether cached values may be served to the current request (see the module doc).
pub async fn admitted(gate: &dyn Coherence) -> bool {
    if gate.is_standalone() {
        return true;
    }
    match ADMITTED.try_with(Cell::get) {
        Ok(Some(answer)) => answer,
        Ok(None) => {
            let answer = gate.fence().await;
            let _ = ADMITTED.try_with(|memo| memo.set(Some(answer)));
            answer
        }
        // Outside a request (background work): fence every time.
        Err(_) => gate.fence().await,
    }
}
