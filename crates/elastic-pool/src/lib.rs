//! elastic-pool: a worker pool whose size follows the load.
//!
//! (Crate overview: see README.md; filled in below.)
#![deny(missing_docs)]

mod autoscale;
mod builder;
pub mod clock;
mod controller;
pub mod erlang;
mod error;
pub mod ewma;
mod gate;
mod handle;
pub mod histogram;
mod job;
mod owner;
pub mod policy;
mod pool;
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

pub use autoscale::DECISION_RING;
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
pub use signals::{Metrics, Quantiles, Smoothed, Window};
pub use stats::Stats;
pub use tenant::{Key, KeyStats, KeysFull};
pub use typed::TypedPool;

/// The lock-free protocols, exposed only to the loom models in `tests/loom_*.rs`.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::gate::Gate;
    pub use crate::sleep::{Sleeper, Sleepers, Wake};
}
