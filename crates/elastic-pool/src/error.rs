//! Error types. Every submit error hands the job back to the caller.

use std::any::Any;
use std::fmt;

macro_rules! job_error_debug {
    ($ty:ident { $($variant:ident),* }) => {
        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $ty::$variant(_) => f.write_str(concat!(stringify!($ty), "::", stringify!($variant), "(..)")), )*
                }
            }
        }
    };
}

/// Why a non-blocking submit ([`Pool::try_execute`](crate::Pool::try_execute)) failed. The
/// job comes back inside.
#[derive(thiserror::Error)]
pub enum TrySubmitError<T> {
    /// The queue is full. The pool is shedding load; the caller decides what to do with the
    /// job (retry later, run it inline, drop it).
    #[error("the pool's queue is full (overloaded)")]
    Overloaded(T),
    /// The pool is shutting down and accepts no new work.
    #[error("the pool is shutting down")]
    ShuttingDown(T),
}
job_error_debug!(TrySubmitError {
    Overloaded,
    ShuttingDown
});

impl<T> TrySubmitError<T> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            TrySubmitError::Overloaded(t) | TrySubmitError::ShuttingDown(t) => t,
        }
    }
}

/// Why a blocking submit ([`Pool::execute`](crate::Pool::execute)) failed. It only fails
/// once the pool is shutting down; the job comes back inside.
#[derive(thiserror::Error)]
pub enum SubmitError<T> {
    /// The pool is shutting down and accepts no new work.
    #[error("the pool is shutting down")]
    ShuttingDown(T),
}
job_error_debug!(SubmitError { ShuttingDown });

impl<T> SubmitError<T> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            SubmitError::ShuttingDown(t) => t,
        }
    }
}

/// Why a submit with a deadline ([`Pool::execute_timeout`](crate::Pool::execute_timeout))
/// failed. The job comes back inside.
#[derive(thiserror::Error)]
pub enum SubmitTimeoutError<T> {
    /// The queue stayed full for the whole timeout.
    #[error("the pool's queue stayed full until the timeout")]
    Timeout(T),
    /// The pool is shutting down and accepts no new work.
    #[error("the pool is shutting down")]
    ShuttingDown(T),
}
job_error_debug!(SubmitTimeoutError {
    Timeout,
    ShuttingDown
});

impl<T> SubmitTimeoutError<T> {
    /// The job that was not accepted.
    pub fn into_inner(self) -> T {
        match self {
            SubmitTimeoutError::Timeout(t) | SubmitTimeoutError::ShuttingDown(t) => t,
        }
    }
}

/// A pool option that failed validation. `field` is the builder method's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pool option `{field}`: {reason}")]
pub struct BuildError {
    /// The offending option, named as the builder method that sets it.
    pub field: &'static str,
    /// What rule it broke.
    pub reason: String,
}

impl BuildError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        BuildError {
            field,
            reason: reason.into(),
        }
    }
}

/// Why a [`TaskHandle`](crate::TaskHandle) yielded no value.
#[derive(thiserror::Error)]
pub enum JoinError {
    /// The task panicked; the payload is inside (often a `&'static str` or `String`).
    #[error("the task panicked")]
    Panicked(Box<dyn Any + Send + 'static>),
    /// The task was dropped without running: returned by
    /// [`Pool::shutdown_now`](crate::Pool::shutdown_now) and then dropped.
    #[error("the task was cancelled before it ran")]
    Cancelled,
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| p.downcast_ref::<String>().map(String::as_str));
                match msg {
                    Some(m) => write!(f, "JoinError::Panicked({m:?})"),
                    None => f.write_str("JoinError::Panicked(..)"),
                }
            }
            JoinError::Cancelled => f.write_str("JoinError::Cancelled"),
        }
    }
}

impl JoinError {
    /// The panic payload, if the task panicked.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self {
            JoinError::Panicked(p) => Some(p),
            JoinError::Cancelled => None,
        }
    }
}

/// A bounded shutdown ran out of time. The pool stays closed; the workers named here go on
/// in the background and exit once their tasks and the queue are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shutdown timed out with {running} task(s) still running and {queued} queued")]
pub struct ShutdownTimeout {
    /// Tasks still running when the deadline passed.
    pub running: usize,
    /// Tasks still queued when the deadline passed.
    pub queued: usize,
    /// Worker threads still alive when the deadline passed.
    pub workers: usize,
}
