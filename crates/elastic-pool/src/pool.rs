//! `Pool`: the closure pool — execute, try_execute, execute_timeout, spawn, batches.

use crate::builder::{Builder, Config};
use crate::controller::Controller;
use crate::error::{SubmitError, SubmitTimeoutError, TrySubmitError};
use crate::handle::TaskHandle;
use crate::histogram::Snapshot;
use crate::job::{Exec, Job, Outcome, Run, Spawned};
use crate::owner::{common_pool_methods, Owner};
use crate::shared::{Handler, Item, Reject, Shared, Task, Wait};
use crate::tenant::{Key, KeyStats, KeysFull, NO_KEY};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the closure pool's jobs.
pub(crate) struct RunJob;

impl Handler<Job> for RunJob {
    #[inline]
    fn handle(&self, job: Job) -> Outcome {
        job.run_job()
    }
}

/// An autoscaling pool of worker threads running closures.
///
/// Cloning a `Pool` gives another handle to the same pool; the pool shuts down gracefully
/// when the last handle is dropped.
///
/// ```
/// let pool = elastic_pool::Pool::builder().max_workers(4).build().unwrap();
/// let handle = pool.spawn(|| 6 * 7).unwrap();
/// assert_eq!(handle.join().unwrap(), 42);
/// ```
///
/// # Submitting to your own pool
/// A task that calls the blocking [`execute`](Pool::execute) on its own pool while the
/// queue is full waits for room like any other caller; if every worker is doing the same,
/// nothing frees room and they wait forever (ants #197). From inside a task, use
/// [`try_execute`](Pool::try_execute) (and run the job inline on `Overloaded`) or
/// [`execute_timeout`](Pool::execute_timeout) instead.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared<Job, RunJob>>,
    _owner: Arc<Owner<Job, RunJob>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// A builder with every option at its default.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn from_parts(
        config: Config,
        controller: Option<Controller>,
        autoscale: Option<crate::autoscale::Autoscale>,
    ) -> Pool {
        let owner = Owner::start(config, controller, autoscale, RunJob);
        Pool {
            shared: Arc::clone(&owner.shared),
            _owner: owner,
        }
    }

    #[inline]
    fn task(&self, job: Job, key: u32) -> Task<Job> {
        Task {
            item: Item::One(job),
            queued_ns: self.shared.stamp(),
            key,
        }
    }

    /// Runs `f` on a worker, fire and forget. Blocks while the queue is full
    /// (backpressure).
    ///
    /// # Errors
    /// [`SubmitError::ShuttingDown`] with `f` inside, once shutdown has begun.
    #[inline]
    pub fn execute<F>(&self, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.execute_as(NO_KEY, f)
    }

    /// [`execute`](Pool::execute) on behalf of a tenant [`Key`]: the key's counters and
    /// wait histogram are updated too.
    ///
    /// # Errors
    /// As [`execute`](Pool::execute).
    #[inline]
    pub fn execute_keyed<F>(&self, key: Key, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.execute_as(key.0, f)
    }

    #[inline]
    fn execute_as<F>(&self, key: u32, f: F) -> Result<(), SubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        match self
            .shared
            .push(self.task(Job::new(Exec(f)), key), Wait::Block)
        {
            Ok(()) => Ok(()),
            Err(Reject::Closed(t) | Reject::Full(t)) => {
                Err(SubmitError::ShuttingDown(unwrap_one::<Exec<F>>(t).0))
            }
        }
    }

    /// Runs `f` on a worker if the queue has room right now; never blocks.
    ///
    /// # Errors
    /// [`TrySubmitError::Overloaded`] when the queue is full and
    /// [`TrySubmitError::ShuttingDown`] after shutdown, each with `f` inside.
    #[inline]
    pub fn try_execute<F>(&self, f: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.try_execute_as(NO_KEY, f)
    }

    /// [`try_execute`](Pool::try_execute) on behalf of a tenant [`Key`].
    ///
    /// # Errors
    /// As [`try_execute`](Pool::try_execute).
    #[inline]
    pub fn try_execute_keyed<F>(&self, key: Key, f: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        self.try_execute_as(key.0, f)
    }

    #[inline]
    fn try_execute_as<F>(&self, key: u32, f: F) -> Result<(), TrySubmitError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        // Shed before wrapping the job: a saturated pool rejects without moving or boxing it.
        if self.shared.is_full() {
            return Err(if self.shared.count_early_reject(1, key) {
                TrySubmitError::ShuttingDown(f)
            } else {
                TrySubmitError::Overloaded(f)
            });
        }
        match self
            .shared
            .push(self.task(Job::new(Exec(f)), key), Wait::Never)
        {
            Ok(()) => Ok(()),
            Err(Reject::Full(t)) => Err(TrySubmitError::Overloaded(unwrap_one::<Exec<F>>(t).0)),
            Err(Reject::Closed(t)) => Err(TrySubmitError::ShuttingDown(unwrap_one::<Exec<F>>(t).0)),
        }
    }

    /// Runs `f` on a worker, waiting at most `timeout` for room in the queue.
    ///
    /// # Errors
    /// [`SubmitTimeoutError::Timeout`] if the queue stayed full, or
    /// [`SubmitTimeoutError::ShuttingDown`]; `f` comes back inside.
    pub fn execute_timeout<F>(&self, f: F, timeout: Duration) -> Result<(), SubmitTimeoutError<F>>
    where
        F: FnOnce() + Send + 'static,
    {
        // A timeout too long to represent as an instant is no deadline at all.
        let wait = Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Block, Wait::Until);
        match self.shared.push(self.task(Job::new(Exec(f)), NO_KEY), wait) {
            Ok(()) => Ok(()),
            Err(Reject::Full(t)) => Err(SubmitTimeoutError::Timeout(unwrap_one::<Exec<F>>(t).0)),
            Err(Reject::Closed(t)) => {
                Err(SubmitTimeoutError::ShuttingDown(unwrap_one::<Exec<F>>(t).0))
            }
        }
    }

    /// Runs `f` on a worker and returns a handle to its result. Blocks while the queue is
    /// full. A panic in `f` comes back through the handle as
    /// [`JoinError::Panicked`](crate::JoinError::Panicked) (and is counted in
    /// [`Stats::panicked`](crate::Stats::panicked); the panic handler is not called).
    ///
    /// ```
    /// # let pool = elastic_pool::Pool::builder().build().unwrap();
    /// let h = pool.spawn(|| "done").unwrap();
    /// # futures::executor::block_on(async {
    /// assert_eq!(h.await.unwrap(), "done"); // or h.join()
    /// # });
    /// ```
    ///
    /// # Errors
    /// [`SubmitError::ShuttingDown`] with `f` inside, once shutdown has begun.
    pub fn spawn<F, T>(&self, f: F) -> Result<TaskHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        match self
            .shared
            .push(self.task(Job::new(Spawned { f, tx }), NO_KEY), Wait::Block)
        {
            Ok(()) => Ok(TaskHandle::new(rx)),
            Err(Reject::Closed(t) | Reject::Full(t)) => {
                Err(SubmitError::ShuttingDown(unwrap_one::<Spawned<F, T>>(t).f))
            }
        }
    }

    /// Like [`spawn`](Pool::spawn), but never blocks.
    ///
    /// # Errors
    /// [`TrySubmitError::Overloaded`] or [`TrySubmitError::ShuttingDown`] with `f` inside.
    pub fn try_spawn<F, T>(&self, f: F) -> Result<TaskHandle<T>, TrySubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        match self
            .shared
            .push(self.task(Job::new(Spawned { f, tx }), NO_KEY), Wait::Never)
        {
            Ok(()) => Ok(TaskHandle::new(rx)),
            Err(Reject::Full(t)) => {
                Err(TrySubmitError::Overloaded(unwrap_one::<Spawned<F, T>>(t).f))
            }
            Err(Reject::Closed(t)) => Err(TrySubmitError::ShuttingDown(
                unwrap_one::<Spawned<F, T>>(t).f,
            )),
        }
    }

    /// Submits many closures with one queue operation per chunk (at most 256 jobs, split
    /// so that every worker up to the target gets a share). Much cheaper per task than one
    /// `execute` per job for trivial tasks. Blocks while the queue is full. A chunk's jobs
    /// run one after another on one worker and share one queue-wait sample.
    ///
    /// # Errors
    /// [`SubmitError::ShuttingDown`] with every job that was not accepted, in order.
    pub fn execute_batch<I, F>(&self, jobs: I) -> Result<(), SubmitError<Vec<F>>>
    where
        I: IntoIterator<Item = F>,
        F: FnOnce() + Send + 'static,
    {
        let jobs: Vec<Job> = jobs.into_iter().map(|f| Job::new(Exec(f))).collect();
        let stamp = self.shared.stamp();
        self.shared.push_batch(jobs, stamp, NO_KEY).map_err(|rest| {
            SubmitError::ShuttingDown(
                rest.into_iter()
                    .map(|j| j.downcast::<Exec<F>>().0)
                    .collect(),
            )
        })
    }

    /// Registers a tenant key by name (or finds it) and returns its dense handle. The map is
    /// consulted only here; submitting with the key and reading every key's counters touch
    /// only a fixed slice.
    ///
    /// # Errors
    /// [`KeysFull`] when all [`Builder::max_keys`](crate::Builder::max_keys) slots are
    /// taken.
    pub fn key(&self, name: &str) -> Result<Key, KeysFull> {
        self.shared.keys.key(name)
    }

    /// The name `key` was registered with.
    pub fn key_name(&self, key: Key) -> Option<String> {
        self.shared.keys.name(key)
    }

    /// One key's counters and its queue-wait histogram (copied into `wait`, which is
    /// overwritten). `None` for a key of another pool.
    pub fn key_stats(&self, key: Key, wait: &mut Snapshot) -> Option<KeyStats> {
        self.shared.keys.stats(key, wait)
    }

    /// Visits every registered key's counters and live wait histogram, in key order,
    /// without touching the name map or allocating.
    pub fn for_each_key(&self, f: impl FnMut(KeyStats, &crate::histogram::Histogram)) {
        self.shared.keys.for_each(f)
    }

    common_pool_methods!(Job);
}

/// Recovers the concrete job from a single-job task that was refused.
fn unwrap_one<R: Run>(t: Task<Job>) -> R {
    match t.item {
        Item::One(j) => j.downcast::<R>(),
        Item::Batch(_) => unreachable!("single submits never build a batch"),
    }
}
