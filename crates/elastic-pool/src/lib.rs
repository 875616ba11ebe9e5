//! elastic-pool: a worker pool whose size follows the load.
//!
//! (Crate overview: see README.md; filled in below.)
#![deny(missing_docs)]

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
mod sleep;
mod stats;
pub mod strategy;
mod sync;
mod typed;
mod worker;

pub use builder::{
    Builder, PanicHandler, QueueCapacity, SpawnHook, ThreadHook, DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_WORKERS, DEFAULT_QUEUE_CAPACITY, DEFAULT_THREAD_NAME, DEFAULT_WAIT_SAMPLING,
};
pub use controller::Controller;
pub use error::{
    BuildError, JoinError, ShutdownTimeout, SubmitError, SubmitTimeoutError, TrySubmitError,
};
pub use handle::TaskHandle;
pub use job::Job;
pub use pool::Pool;
pub use stats::Stats;
pub use typed::TypedPool;

/// The lock-free protocols, exposed only to the loom models in `tests/loom_*.rs`.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::gate::Gate;
    pub use crate::sleep::{Sleeper, Sleepers, Wake};
}
