//! Type-erased jobs for the closure pool, and how a failed submit gets the caller's own
//! closure back.

use crate::error::JoinError;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a worker learns from running one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Ran to completion.
    Done,
    /// Panicked; the panic was already delivered (to a [`TaskHandle`](crate::TaskHandle)).
    PanickedDelivered,
}

/// A unit of work in the closure pool's queue.
pub(crate) trait Run: Send + 'static {
    /// Runs the job. A panic may escape; the worker catches it.
    fn run(self: Box<Self>) -> Outcome;
    /// Turns the box back into its concrete type, so a rejected submit can return the
    /// caller's own closure without `unsafe`.
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

/// A fire-and-forget closure.
pub(crate) struct Exec<F>(pub(crate) F);

impl<F: FnOnce() + Send + 'static> Run for Exec<F> {
    #[inline]
    fn run(self: Box<Self>) -> Outcome {
        (self.0)();
        Outcome::Done
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A closure whose result (or panic) goes to a [`TaskHandle`](crate::TaskHandle).
pub(crate) struct Spawned<F, T> {
    pub(crate) f: F,
    pub(crate) tx: oneshot::Sender<Result<T, JoinError>>,
}

impl<F, T> Run for Spawned<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>) -> Outcome {
        let Spawned { f, tx } = *self;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => {
                // The handle may have been dropped: the result is simply discarded.
                let _ = tx.send(Ok(v));
                Outcome::Done
            }
            Err(payload) => {
                let _ = tx.send(Err(JoinError::Panicked(payload)));
                Outcome::PanickedDelivered
            }
        }
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A job of the closure pool, as returned by [`Pool::shutdown_now`](crate::Pool::shutdown_now)
/// for tasks that never ran. Run it, or drop it (a dropped spawned task resolves its handle
/// to [`JoinError::Cancelled`]).
pub struct Job(pub(crate) Box<dyn Run>);

impl Job {
    /// Runs the job on the calling thread.
    ///
    /// # Panics
    /// Propagates a panic from a closure submitted with `execute`; a task submitted with
    /// `spawn` delivers its panic to its handle instead.
    pub fn run(self) {
        let _ = self.0.run();
    }

    /// Recovers the concrete job; only the submit paths call this, with the type they boxed.
    pub(crate) fn downcast<R: Run>(self) -> R {
        match self.0.into_any().downcast::<R>() {
            Ok(b) => *b,
            Err(_) => unreachable!("a job is only downcast to the type it was boxed from"),
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job(..)")
    }
}
