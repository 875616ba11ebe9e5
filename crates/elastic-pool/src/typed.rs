//! `TypedPool<T>`: a pool whose handler is fixed at build time; submitting a value boxes
//! nothing.

use crate::builder::Config;
use crate::controller::Controller;
use crate::error::{SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::job::Outcome;
use crate::owner::{common_pool_methods, Owner};
use crate::shared::{Handler, Item, Reject, Shared, Task, Wait};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls the pool's fixed handler.
pub(crate) struct FnHandler<T>(Box<dyn Fn(T) + Send + Sync>);

impl<T: Send + 'static> Handler<T> for FnHandler<T> {
    #[inline]
    fn handle(&self, v: T) -> Outcome {
        (self.0)(v);
        Outcome::Done
    }
}

/// A pool that runs one handler, fixed at build time, on each submitted value — like ants'
/// `PoolWithFunc`. The queue carries the values themselves: no closure is boxed per task.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// let sum = Arc::new(AtomicU64::new(0));
/// let s = Arc::clone(&sum);
/// let pool = elastic_pool::Pool::builder()
///     .max_workers(2)
///     .build_typed(move |x: u64| { s.fetch_add(x, Ordering::Relaxed); })
///     .unwrap();
/// for i in 1..=100 { pool.execute(i).unwrap(); }
/// pool.shutdown();
/// assert_eq!(sum.load(Ordering::Relaxed), 5050);
/// ```
pub struct TypedPool<T: Send + 'static> {
    shared: Arc<Shared<T, FnHandler<T>>>,
    _owner: Arc<Owner<T, FnHandler<T>>>,
}

impl<T: Send + 'static> Clone for TypedPool<T> {
    fn clone(&self) -> Self {
        TypedPool {
            shared: Arc::clone(&self.shared),
            _owner: Arc::clone(&self._owner),
        }
    }
}

impl<T: Send + 'static> std::fmt::Debug for TypedPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedPool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<T: Send + 'static> TypedPool<T> {
    pub(crate) fn from_parts<F>(
        config: Config,
        controller: Option<Controller>,
        autoscale: Option<crate::autoscale::Autoscale>,
        handler: F,
    ) -> Self
    where
        F: Fn(T) + Send + Sync + 'static,
    {
        let owner = Owner::start(config, controller, autoscale, FnHandler(Box::new(handler)));
        TypedPool {
            shared: Arc::clone(&owner.shared),
            _owner: owner,
        }
    }

    #[inline]
    fn task(&self, v: T) -> Task<T> {
        Task {
            item: Item::One(v),
            queued_ns: self.shared.stamp(),
            key: crate::tenant::NO_KEY,
        }
    }

    /// Queues `value` for the handler. Blocks while the queue is full.
    ///
    /// # Errors
    /// [`SubmitError::ShuttingDown`] with the value inside, once shutdown has begun.
    #[inline]
    pub fn execute(&self, value: T) -> Result<(), SubmitError<T>> {
        self.shared
            .push(self.task(value), Wait::Block)
            .map_err(|r| match r {
                Reject::Closed(t) | Reject::Full(t) => SubmitError::ShuttingDown(one(t)),
            })
    }

    /// Queues `value` if there is room right now; never blocks.
    ///
    /// # Errors
    /// [`TrySubmitError::Overloaded`] or [`TrySubmitError::ShuttingDown`] with the value.
    #[inline]
    pub fn try_execute(&self, value: T) -> Result<(), TrySubmitError<T>> {
        // Shed before stamping and entering the push path, as `Pool::try_execute` does: a
        // saturated pool answers from one look at the queue (`elastic-pool bench --scenario
        // reject`: 35 → 12 ns per refused call).
        if self.shared.is_full() {
            return Err(
                if self.shared.count_early_reject(1, crate::tenant::NO_KEY) {
                    TrySubmitError::ShuttingDown(value)
                } else {
                    TrySubmitError::Overloaded(value)
                },
            );
        }
        self.shared
            .push(self.task(value), Wait::Never)
            .map_err(|r| match r {
                Reject::Full(t) => TrySubmitError::Overloaded(one(t)),
                Reject::Closed(t) => TrySubmitError::ShuttingDown(one(t)),
            })
    }

    /// Queues `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SubmitTimeoutError::Timeout`] or [`SubmitTimeoutError::ShuttingDown`] with the
    /// value.
    pub fn execute_timeout(
        &self,
        value: T,
        timeout: Duration,
    ) -> Result<(), SubmitTimeoutError<T>> {
        // A timeout too long to represent as an instant is no deadline at all.
        let wait = Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Block, Wait::Until);
        self.shared
            .push(self.task(value), wait)
            .map_err(|r| match r {
                Reject::Full(t) => SubmitTimeoutError::Timeout(one(t)),
                Reject::Closed(t) => SubmitTimeoutError::ShuttingDown(one(t)),
            })
    }

    /// Queues many values with one queue operation per chunk; see
    /// [`Pool::execute_batch`](crate::Pool::execute_batch).
    ///
    /// # Errors
    /// [`SubmitError::ShuttingDown`] with every value not accepted, in order.
    pub fn execute_batch<I: IntoIterator<Item = T>>(
        &self,
        values: I,
    ) -> Result<(), SubmitError<Vec<T>>> {
        let stamp = self.shared.stamp();
        self.shared
            .push_batch(values.into_iter().collect(), stamp, crate::tenant::NO_KEY)
            .map_err(SubmitError::ShuttingDown)
    }

    common_pool_methods!(T);
}

fn one<T>(t: Task<T>) -> T {
    match t.item {
        Item::One(v) => v,
        Item::Batch(_) => unreachable!("single submits never build a batch"),
    }
}
