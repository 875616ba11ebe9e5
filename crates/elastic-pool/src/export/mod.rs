//! Exporting a pool's signals: Prometheus text and a `/metrics` endpoint (feature
//! `prometheus`), and the `metrics` facade (feature `metrics`).
//!
//! An [`Exporter`] is a registry of named pools. Each scrape ([`Exporter::render`]) or
//! publish ([`Exporter::publish`]) reads every registered pool's exact counts
//! ([`Stats`]), its cumulative queue-wait and service-time histograms, its demand estimate
//! and its scale decisions, and writes them under one prefix, `elastic_pool_`, in base units
//! (seconds), with the pool's name as the `pool` label. docs/OBSERVABILITY.md lists every
//! metric.
//!
//! ```
//! # #[cfg(feature = "prometheus")] {
//! use elastic_pool::{export::Exporter, Pool};
//!
//! let pool = Pool::builder().max_workers(4).build()?;
//! let exporter = Exporter::new();
//! exporter.register("images", &pool)?;
//! let server = exporter.serve("127.0.0.1:0")?; // loopback, any free port
//! println!("scrape http://{}/metrics", server.local_addr());
//! assert!(exporter.render().contains("elastic_pool_workers{pool=\"images\"}"));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design note
//!
//! Nothing here touches a pool's hot path: the exporter only calls the pool's public read
//! methods, at scrape or publish time. Scale events come from the autoscaler's exact
//! counters (`Stats::scale_ups`, `Stats::scale_downs`). One figure needs state between
//! reads, and keeps it here, per registered pool:
//!
//! * **counters never go backwards**: each exported counter is the maximum of its reading
//!   and the previous export, so a torn read (the pool's counters are read one relaxed load
//!   at a time) can never look like a counter reset to Prometheus.
//!
//! The registry holds a clone of each pool handle, so a registered pool is not shut down by
//! dropping the application's handles; [`Exporter::unregister`] (or dropping the exporter and
//! its server) releases it, and [`Pool::shutdown`](crate::Pool::shutdown) works regardless.

#[cfg(feature = "metrics")]
mod facade;
#[cfg(feature = "prometheus")]
mod http;
#[cfg(feature = "prometheus")]
mod prometheus;

#[cfg(feature = "metrics")]
pub use facade::Publisher;
#[cfg(feature = "prometheus")]
pub use http::{MetricsServer, DEFAULT_ADDR, MAX_CONNECTIONS, MAX_REQUEST_BYTES, REQUEST_TIMEOUT};
#[cfg(feature = "prometheus")]
pub use prometheus::{le_bounds_ns, CONTENT_TYPE};

use crate::histogram::Snapshot;
use crate::sync::lock_std as lock;
use crate::{Pool, Stats, TypedPool};
use std::sync::{Arc, Mutex};

/// The prefix of every exported metric name.
pub const PREFIX: &str = "elastic_pool_";

/// The crate version, exported as `elastic_pool_build_info{version="…"} 1`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Pool {}
    impl<T: Send + 'static> Sealed for crate::TypedPool<T> {}
}

/// A pool the exporter can read: [`Pool`] and [`TypedPool`]. Sealed; the methods are the
/// pools' own public read methods.
pub trait Source: sealed::Sealed + Send + Sync + 'static {
    /// See [`Pool::stats`].
    fn stats(&self) -> Stats;
    /// See [`Pool::histograms`].
    fn histograms(&self, wait: &mut Snapshot, service: &mut Snapshot);
    /// See [`Pool::demand_workers`].
    fn demand_workers(&self) -> Option<f64>;
    /// See [`Pool::wait_sampling`].
    fn wait_sampling(&self) -> u32;
}

macro_rules! impl_source {
    ($ty:ty $(, $g:ident)?) => {
        impl<$($g: Send + 'static)?> Source for $ty {
            fn stats(&self) -> Stats {
                <$ty>::stats(self)
            }
            fn histograms(&self, wait: &mut Snapshot, service: &mut Snapshot) {
                <$ty>::histograms(self, wait, service)
            }
            fn demand_workers(&self) -> Option<f64> {
                <$ty>::demand_workers(self)
            }
            fn wait_sampling(&self) -> u32 {
                <$ty>::wait_sampling(self)
            }
        }
    };
}
impl_source!(Pool);
impl_source!(TypedPool<T>, T);

/// Why [`Exporter::register`] refused a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The name is empty.
    #[error("a pool's export name must not be empty")]
    EmptyName,
    /// Another registered pool has this name (names are the `pool` label: they must be
    /// unique within one exporter).
    #[error("a pool named `{0}` is already registered")]
    DuplicateName(String),
}

/// Exported counters after the previous read, so that a later read never goes backwards.
#[derive(Clone, Copy, Default)]
struct Counters {
    submitted: u64,
    completed: u64,
    rejected_overloaded: u64,
    rejected_shutdown: u64,
    panicked: u64,
    spawned: u64,
    retired: u64,
    busy_ns: u64,
    scale_up: u64,
    scale_down: u64,
}

/// Per-pool state kept between reads.
#[derive(Default)]
struct ReadState {
    last: Counters,
    /// Histograms at the previous facade publish (the facade takes observations, so it is
    /// fed the difference).
    #[cfg(feature = "metrics")]
    published: Option<(Box<Snapshot>, Box<Snapshot>)>,
}

struct Entry {
    name: Arc<str>,
    source: Box<dyn Source>,
    state: Mutex<ReadState>,
}

/// One pool's figures at one read, as exported.
pub(crate) struct Sample {
    pub(crate) name: Arc<str>,
    pub(crate) stats: Stats,
    /// Monotone versions of the counters in `stats`, plus the scale-event counts.
    pub(crate) counters: CountersOut,
    pub(crate) demand: Option<f64>,
    pub(crate) wait_sampling: u32,
    pub(crate) wait: Box<Snapshot>,
    pub(crate) service: Box<Snapshot>,
}

/// The exported counter values of a [`Sample`].
#[derive(Clone, Copy)]
pub(crate) struct CountersOut {
    pub(crate) submitted: u64,
    pub(crate) completed: u64,
    pub(crate) rejected_overloaded: u64,
    pub(crate) rejected_shutdown: u64,
    pub(crate) panicked: u64,
    pub(crate) spawned: u64,
    pub(crate) retired: u64,
    pub(crate) busy_ns: u64,
    pub(crate) scale_up: u64,
    pub(crate) scale_down: u64,
}

impl Entry {
    fn sample(&self) -> Sample {
        let mut wait = Box::new(Snapshot::new());
        let mut service = Box::new(Snapshot::new());
        let mut st = lock(&self.state);
        let stats = self.source.stats();
        self.source.histograms(&mut wait, &mut service);
        let demand = self.source.demand_workers().filter(|d| d.is_finite());
        let wait_sampling = self.source.wait_sampling().max(1);
        let l = &mut st.last;
        let mono = |last: &mut u64, v: u64| {
            *last = (*last).max(v);
            *last
        };
        let counters = CountersOut {
            submitted: mono(&mut l.submitted, stats.submitted),
            completed: mono(&mut l.completed, stats.completed),
            rejected_overloaded: mono(&mut l.rejected_overloaded, stats.rejected_overloaded),
            rejected_shutdown: mono(&mut l.rejected_shutdown, stats.rejected_shutdown),
            panicked: mono(&mut l.panicked, stats.panicked),
            spawned: mono(&mut l.spawned, stats.spawned),
            retired: mono(&mut l.retired, stats.retired),
            busy_ns: mono(&mut l.busy_ns, stats.busy_ns_total),
            scale_up: mono(&mut l.scale_up, stats.scale_ups),
            scale_down: mono(&mut l.scale_down, stats.scale_downs),
        };
        Sample {
            name: Arc::clone(&self.name),
            stats,
            counters,
            demand,
            wait_sampling,
            wait,
            service,
        }
    }
}

/// A registry of named pools whose signals are exported as Prometheus text
/// ([`render`](Exporter::render), [`serve`](Exporter::serve); feature `prometheus`) or
/// through the `metrics` facade ([`publish`](Exporter::publish); feature `metrics`).
///
/// Cloning gives another handle to the same registry.
#[derive(Clone, Default)]
pub struct Exporter {
    entries: Arc<Mutex<Vec<Arc<Entry>>>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<Arc<str>> = lock(&self.entries)
            .iter()
            .map(|e| Arc::clone(&e.name))
            .collect();
        f.debug_struct("Exporter").field("pools", &names).finish()
    }
}

impl Exporter {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `pool` under `name`, which becomes its `pool` label. The exporter keeps a
    /// clone of the handle until [`unregister`](Exporter::unregister) (see the module's
    /// design note).
    ///
    /// # Errors
    /// [`ExportError::EmptyName`], or [`ExportError::DuplicateName`] if another pool of this
    /// exporter has that name; nothing changes.
    pub fn register<P: Source + Clone>(
        &self,
        name: impl Into<String>,
        pool: &P,
    ) -> Result<(), ExportError> {
        let name: String = name.into();
        if name.is_empty() {
            return Err(ExportError::EmptyName);
        }
        let mut entries = lock(&self.entries);
        if entries.iter().any(|e| *e.name == *name) {
            return Err(ExportError::DuplicateName(name));
        }
        entries.push(Arc::new(Entry {
            name: name.into(),
            source: Box::new(pool.clone()),
            state: Mutex::new(ReadState::default()),
        }));
        Ok(())
    }

    /// Removes the pool registered as `name` (and drops the exporter's handle to it).
    /// Returns whether there was one.
    pub fn unregister(&self, name: &str) -> bool {
        let mut entries = lock(&self.entries);
        let before = entries.len();
        entries.retain(|e| *e.name != *name);
        entries.len() != before
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<String> {
        lock(&self.entries)
            .iter()
            .map(|e| e.name.to_string())
            .collect()
    }

    /// Reads every registered pool once. The registry lock is held only to copy the list,
    /// so registering never waits for a read.
    fn entries(&self) -> Vec<Arc<Entry>> {
        lock(&self.entries).clone()
    }

    #[cfg(feature = "prometheus")]
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.entries().iter().map(|e| e.sample()).collect()
    }
}
