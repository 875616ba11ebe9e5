//! `Builder`: every pool option, its default, and validation that names the bad field.

use crate::controller::Controller;
use crate::error::BuildError;
use crate::policy::Policy;
use crate::pool::Pool;
use crate::typed::TypedPool;
use std::any::Any;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Called with the payload of a task that panicked (tasks submitted with `execute`).
pub type PanicHandler = Arc<dyn Fn(Box<dyn Any + Send>) + Send + Sync>;
/// Called on a worker thread when it starts or stops.
pub type ThreadHook = Arc<dyn Fn() + Send + Sync>;
/// Decides whether the pool may start one more thread; see [`Builder::spawn_hook`].
pub type SpawnHook = Arc<dyn Fn() -> io::Result<()> + Send + Sync>;

/// The default upper bound on workers.
pub const DEFAULT_MAX_WORKERS: usize = 256;
/// The default queue bound.
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
/// The default idle keep-alive.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);
/// The default wait-sampling rate: one task in 8 per submitting thread has its queue wait
/// and run time recorded. Reading the clock costs ~20 ns twice per sampled task; counts of
/// tasks are always exact. The autoscaler lowers the rate to 1 when load is light, so a
/// window still holds enough samples.
pub const DEFAULT_WAIT_SAMPLING: u32 = 8;
/// The default number of tenant keys a pool has room for.
pub const DEFAULT_MAX_KEYS: usize = 64;
/// The default worker thread name.
pub const DEFAULT_THREAD_NAME: &str = "elastic-pool-worker";

/// The pool's queue bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueCapacity {
    /// At most this many queued entries; `execute` blocks and `try_execute` sheds beyond it.
    Bounded(usize),
    /// No bound: submits never block and never shed. Opt-in only.
    Unbounded,
}

/// Validated pool configuration, shared with the workers.
pub(crate) struct Config {
    pub(crate) min: usize,
    pub(crate) max: usize,
    pub(crate) queue: QueueCapacity,
    pub(crate) keep_alive: Duration,
    pub(crate) prestart: bool,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
    pub(crate) panic_handler: Option<PanicHandler>,
    pub(crate) on_start: Option<ThreadHook>,
    pub(crate) on_stop: Option<ThreadHook>,
    pub(crate) spawn_hook: Option<SpawnHook>,
    pub(crate) wait_sample_every: u32,
    pub(crate) max_keys: usize,
}

/// Builds a [`Pool`] (closures) or a [`TypedPool`] (one handler fixed at build time).
///
/// ```
/// use std::time::Duration;
/// let pool = elastic_pool::Pool::builder()
///     .min_workers(1)
///     .max_workers(8)
///     .queue_capacity(1_000)
///     .keep_alive(Duration::from_secs(5))
///     .thread_name("db-io")
///     .build()
///     .expect("valid options");
/// pool.execute(|| println!("hello from a worker")).unwrap();
/// pool.shutdown();
/// ```
#[must_use]
pub struct Builder {
    min: usize,
    max: usize,
    queue: QueueCapacity,
    keep_alive: Duration,
    prestart: bool,
    thread_name: String,
    stack_size: Option<usize>,
    panic_handler: Option<PanicHandler>,
    on_start: Option<ThreadHook>,
    on_stop: Option<ThreadHook>,
    spawn_hook: Option<SpawnHook>,
    wait_sample_every: u32,
    max_keys: usize,
    controller: Option<Controller>,
    autoscale: Option<Policy>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            min: 0,
            max: DEFAULT_MAX_WORKERS,
            queue: QueueCapacity::Bounded(DEFAULT_QUEUE_CAPACITY),
            keep_alive: DEFAULT_KEEP_ALIVE,
            prestart: false,
            thread_name: DEFAULT_THREAD_NAME.to_owned(),
            stack_size: None,
            panic_handler: None,
            on_start: None,
            on_stop: None,
            spawn_hook: None,
            wait_sample_every: DEFAULT_WAIT_SAMPLING,
            max_keys: DEFAULT_MAX_KEYS,
            controller: None,
            autoscale: None,
        }
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("min_workers", &self.min)
            .field("max_workers", &self.max)
            .field("queue", &self.queue)
            .field("keep_alive", &self.keep_alive)
            .field("prestart", &self.prestart)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("wait_sample_every", &self.wait_sample_every)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder with every option at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fewest live workers once started: idle workers never retire below it.
    /// Default 0. With [`prestart`](Builder::prestart) they are started at build; otherwise
    /// they start as work arrives and then stay.
    pub fn min_workers(mut self, n: usize) -> Self {
        self.min = n;
        self
    }

    /// The most live workers; never exceeded outside shutdown. Default
    /// [`DEFAULT_MAX_WORKERS`] (256). Must be ≥ 1 and ≥ `min_workers`.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max = n;
        self
    }

    /// Bounds the queue at `n` entries (a task, or a chunk of a batch). Default
    /// [`DEFAULT_QUEUE_CAPACITY`] (65 536). Must be ≥ 1.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue = QueueCapacity::Bounded(n);
        self
    }

    /// Opts in to an unbounded queue: no backpressure and no load shedding.
    pub fn unbounded_queue(mut self) -> Self {
        self.queue = QueueCapacity::Unbounded;
        self
    }

    /// How long a worker may stay idle before it retires (down to `min_workers`; with
    /// autoscaling, down to the autoscaler's target). Default 10 s, like tokio's blocking
    /// pool. Must be > 0.
    pub fn keep_alive(mut self, d: Duration) -> Self {
        self.keep_alive = d;
        self
    }

    /// Start `min_workers` threads in `build()` rather than on demand. Default false.
    pub fn prestart(mut self, yes: bool) -> Self {
        self.prestart = yes;
        self
    }

    /// Worker thread name. Default [`DEFAULT_THREAD_NAME`]. Must not contain a NUL byte.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Worker stack size in bytes. Default: the platform's (std's 2 MiB unless
    /// `RUST_MIN_STACK` says otherwise). Must be ≥ 16 KiB.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Called with the payload when a task submitted with `execute` panics. The worker
    /// survives either way; a panic inside the handler is caught and counted too. Default:
    /// none (the panic is counted in [`Stats::panicked`](crate::Stats::panicked)).
    pub fn panic_handler(
        mut self,
        f: impl Fn(Box<dyn Any + Send>) + Send + Sync + 'static,
    ) -> Self {
        self.panic_handler = Some(Arc::new(f));
        self
    }

    /// Runs on each worker thread when it starts. Default: none. A panic is caught and
    /// counted; the worker still serves.
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_start = Some(Arc::new(f));
        self
    }

    /// Runs on each worker thread when it stops. Default: none. A panic is caught and
    /// counted.
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_stop = Some(Arc::new(f));
        self
    }

    /// Consulted before every thread the pool starts; an `Err` is treated exactly like the
    /// OS refusing the thread (counted in [`Stats::spawn_failures`](crate::Stats::spawn_failures),
    /// retried with backoff). Meant for fault injection and for enforcing an external thread
    /// budget. Default: none.
    pub fn spawn_hook(mut self, f: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> Self {
        self.spawn_hook = Some(Arc::new(f));
        self
    }

    /// Record the queue wait of one task in `n` per submitting thread (1 = every task).
    /// Counts of tasks stay exact whatever `n` is. Default [`DEFAULT_WAIT_SAMPLING`] (8).
    /// Must be ≥ 1.
    pub fn wait_sampling(mut self, n: u32) -> Self {
        self.wait_sample_every = n;
        self
    }

    /// Room for this many tenant keys ([`Pool::key`](crate::Pool::key)). Default
    /// [`DEFAULT_MAX_KEYS`] (64). Each key costs about 1.8 KiB (its wait histogram).
    pub fn max_keys(mut self, n: usize) -> Self {
        self.max_keys = n;
        self
    }

    /// Attaches the autoscaler with `policy`. The policy then owns the bounds, the
    /// keep-alive and the wait sampling (its `min_workers`, `max_workers`, `keep_alive_s`
    /// and `wait_sample_every` replace the builder's), and the control thread moves the
    /// pool's target every tick. Default: no autoscaler (the pool grows on demand up to
    /// `max_workers`).
    pub fn autoscale(mut self, policy: Policy) -> Self {
        self.autoscale = Some(policy);
        self
    }

    /// Serve this pool from an existing [`Controller`] (one control thread for several
    /// pools). Default: the pool starts a private control thread and stops it at shutdown.
    pub fn controller(mut self, c: &Controller) -> Self {
        self.controller = Some(c.clone());
        self
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.max == 0 {
            return Err(BuildError::new("max_workers", "must be at least 1"));
        }
        if self.min > self.max {
            return Err(BuildError::new(
                "min_workers",
                format!("{} is greater than max_workers ({})", self.min, self.max),
            ));
        }
        if self.queue == QueueCapacity::Bounded(0) {
            return Err(BuildError::new(
                "queue_capacity",
                "must be at least 1 (use unbounded_queue() for no bound)",
            ));
        }
        if self.keep_alive.is_zero() {
            return Err(BuildError::new("keep_alive", "must be greater than zero"));
        }
        if self.thread_name.contains('\0') {
            return Err(BuildError::new(
                "thread_name",
                "must not contain a NUL byte",
            ));
        }
        if let Some(s) = self.stack_size {
            if s < 16 * 1024 {
                return Err(BuildError::new(
                    "stack_size",
                    format!("{s} bytes is below the 16 KiB minimum"),
                ));
            }
        }
        if self.wait_sample_every == 0 {
            return Err(BuildError::new(
                "wait_sampling",
                "must be at least 1 (1 = every task)",
            ));
        }
        Ok(())
    }

    fn into_parts(
        mut self,
    ) -> Result<
        (
            Config,
            Option<Controller>,
            Option<crate::autoscale::Autoscale>,
        ),
        BuildError,
    > {
        let autoscale = match self.autoscale.take() {
            None => None,
            Some(p) => {
                let a = crate::autoscale::Autoscale::new(p.clone())
                    .map_err(|e| BuildError::new("autoscale", format!("invalid policy: {e}")))?;
                self.min = p.min_workers;
                self.max = p.max_workers;
                self.keep_alive = p.keep_alive();
                self.wait_sample_every = p.wait_sample_every;
                Some(a)
            }
        };
        self.validate()?;
        Ok((
            Config {
                min: self.min,
                max: self.max,
                queue: self.queue,
                keep_alive: self.keep_alive,
                prestart: self.prestart,
                thread_name: self.thread_name,
                stack_size: self.stack_size,
                panic_handler: self.panic_handler,
                on_start: self.on_start,
                on_stop: self.on_stop,
                spawn_hook: self.spawn_hook,
                wait_sample_every: self.wait_sample_every,
                max_keys: self.max_keys,
            },
            self.controller,
            autoscale,
        ))
    }

    /// Validates the options and starts a closure pool.
    ///
    /// # Errors
    /// A [`BuildError`] naming the first invalid option.
    pub fn build(self) -> Result<Pool, BuildError> {
        let (config, controller, autoscale) = self.into_parts()?;
        Ok(Pool::from_parts(config, controller, autoscale))
    }

    /// Validates the options and starts a typed pool whose every task is `handler(value)`.
    /// Submitting a value boxes nothing.
    ///
    /// # Errors
    /// A [`BuildError`] naming the first invalid option.
    pub fn build_typed<T, F>(self, handler: F) -> Result<TypedPool<T>, BuildError>
    where
        T: Send + 'static,
        F: Fn(T) + Send + Sync + 'static,
    {
        let (config, controller, autoscale) = self.into_parts()?;
        Ok(TypedPool::from_parts(
            config, controller, autoscale, handler,
        ))
    }
}
