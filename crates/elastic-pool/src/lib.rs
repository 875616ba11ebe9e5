//! A worker pool for blocking and CPU work whose size follows the load.
//!
//! Every task is stamped when it is queued (1 in N, per submitting thread) and the worker
//! that takes it records the queue wait and the run time in its own lock-free histogram.
//! One control thread turns those signals into a size: it closes a window every tick,
//! smooths the arrival rate and service time, and sizes the pool with an Erlang-C model,
//! trimmed by the measured p99 wait (see [`policy`] and [`scaler`]). Between ticks the pool
//! starts a worker whenever a task is queued and none is idle, up to the ceiling the
//! controller set; surplus workers retire coldest-first.
//!
//! ```
//! use elastic_pool::Pool;
//!
//! let pool = Pool::builder().min_workers(1).max_workers(8).build()?;
//! pool.execute(|| println!("fire and forget"))?;
//! let h = pool.spawn(|| 2 + 2)?;
//! assert_eq!(h.join()?, 4);
//! let s = pool.stats();
//! assert!(s.live <= 8);
//! pool.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where things are
//! * [`Pool`] / [`TypedPool`] and their [`Builder`]: submitting, resizing, shutdown.
//! * [`TaskHandle`]: a spawned task's result, by `join` or as a `Future`.
//! * [`Stats`] (exact counts) and [`Metrics`] (windowed quantiles, rates, utilisation).
//! * [`histogram`]: the fixed-memory log-linear histogram; [`ewma`]: time-aware smoothing.
//! * [`policy`], [`scaler`], [`strategy`], [`erlang`]: the autoscaler's decision logic.
//! * [`Controller`]: one control thread shared by several pools.
//!
//! docs/ARCHITECTURE.md in the repository describes the modules and protocols.
#![deny(missing_docs)]

pub mod async_submit;
mod autoscale;
mod builder;
pub mod clock;
mod controller;
mod cpu_probe;
pub mod erlang;
mod error;
pub mod ewma;
#[cfg(any(feature = "prometheus", feature = "metrics"))]
pub mod export;
mod gate;
mod handle;
pub mod histogram;
mod job;
mod owner;
pub mod policy;
mod pool;
pub mod sample_log;
pub mod scaler;
mod shard;
mod shared;
mod signals;
mod sleep;
mod stats;
pub mod strategy;
mod sync;
mod tenant;
mod typed;
mod worker;

pub use autoscale::{DECISION_RING, FIRST_TICK, SPAWN_GRACE_FRACTION};
pub use builder::{
    Builder, PanicHandler, QueueCapacity, SpawnHook, ThreadHook, DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_KEYS, DEFAULT_MAX_WORKERS, DEFAULT_QUEUE_CAPACITY, DEFAULT_THREAD_NAME,
    DEFAULT_WAIT_SAMPLING,
};
pub use controller::Controller;
pub use error::{
    BuildError, JoinError, ShutdownTimeout, SubmitError, SubmitTimeoutError, TrySubmitError,
};
pub use handle::TaskHandle;
pub use job::Job;
pub use pool::Pool;
pub use scaler::{Decision, Rule};
pub use shared::{
    trim_idle, TrimBudget, SPAWN_CONFIRM_FRACTION, TRIM_BUDGET_WORKER_S, TRIM_IDLE_MIN,
    TRIM_REGRET_DECAY, TRIM_REGRET_MAX_DOUBLINGS, TRIM_REGRET_MAX_SURPLUS,
};
pub use signals::{Metrics, Quantiles, Smoothed, Window};
pub use stats::Stats;
pub use tenant::{Key, KeyStats, KeysFull};
pub use typed::TypedPool;

/// The lock-free protocols, exposed only to the loom models in `tests/loom_*.rs`.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::gate::Gate;
    pub use crate::sample_log::{Lapped, SampleLog};
    pub use crate::sleep::{Sleeper, Sleepers, Wake};
}

/// The README's code blocks run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
