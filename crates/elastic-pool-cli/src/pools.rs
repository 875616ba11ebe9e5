//! The real pools a run drives: ours (autoscaled, oracle-held, static, on-demand, TPE) and the
//! peers (tokio's blocking pool, rusty_pool), behind one [`Sink`] interface.
//!
//! Every pool is measured the same way: the runner stamps each task's start and end itself and
//! derives queue depth and busy workers from those stamps; only the live-thread count comes
//! from the pool (our `Stats::live`, tokio's thread start/stop hooks, rusty_pool's worker
//! count).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elastic_pool::policy::Policy;
use elastic_pool::{Pool, TrySubmitError};

use crate::contender::{Contender, KEEP_ALIVE, ON_DEMAND_MAX, RUSTY_CORE, RUSTY_MAX};
use crate::oracle::Oracle;

/// A task as the runner submits it.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A pool under test.
pub trait Sink: Send + Sync {
    /// Submits a task; `false` if the pool refused it.
    fn submit(&self, job: Job) -> bool;
    /// Live worker threads now.
    fn live(&self) -> usize;
    /// Called every sampling period with the time since the run's start.
    fn control(&self, _now_s: f64) {}
    /// Threads started so far.
    fn threads_spawned(&self) -> u64;
    /// CPU time of the pool's control thread so far, ns (0 if it has none).
    fn controller_cpu_ns(&self) -> u64 {
        0
    }
    /// Stops the pool, waiting at most `timeout` for running tasks.
    fn shutdown(&self, timeout: Duration);
    /// The elastic-pool behind this sink, for exporting its metrics (`None` for the peers).
    fn pool(&self) -> Option<Pool> {
        None
    }
}

/// How far ahead the oracle contender looks when it sets the size: one sampling period plus
/// a margin, so it is never late for a tick.
const ORACLE_LOOKAHEAD_S: f64 = 0.2;
/// How long `tpe` waits for the thread it just allowed to free a queue slot.
const TPE_GROW_WAIT: Duration = Duration::from_millis(100);
/// Worker thread name for our pools.
const THREAD_NAME: &str = "sim-worker";

/// Builds the pool a contender names.
///
/// # Errors
/// A message if the pool cannot be built.
pub fn build(
    contender: &Contender,
    oracle: &Oracle,
    policy: &Policy,
) -> Result<Box<dyn Sink>, String> {
    let before = control_threads();
    let b = Pool::builder().thread_name(THREAD_NAME).unbounded_queue();
    let err = |e: elastic_pool::BuildError| format!("cannot build the pool for {contender}: {e}");
    let (pool, role) = match *contender {
        Contender::Strategy(kind) => {
            let mut p = policy.clone();
            p.strategy = kind;
            // The policy owns the bounds, the keep-alive and the wait sampling.
            let pool = b.prestart(true).autoscale(p).build().map_err(err)?;
            (pool, Role::Plain)
        }
        Contender::Oracle => {
            let peak = oracle.peak().max(1);
            let first = oracle.max_over(0.0, ORACLE_LOOKAHEAD_S).max(1);
            let pool = b
                .min_workers(first)
                .max_workers(peak)
                .prestart(true)
                .build()
                .map_err(err)?;
            pool.set_target(first);
            (
                pool,
                Role::Oracle {
                    oracle: oracle.clone(),
                    peak,
                    current: AtomicUsize::new(first),
                },
            )
        }
        Contender::Static(n) => (static_pool(b, n).map_err(err)?, Role::Plain),
        Contender::StaticPeak => (
            static_pool(b, oracle.peak().max(1)).map_err(err)?,
            Role::Plain,
        ),
        Contender::OnDemand => (
            b.min_workers(0)
                .max_workers(ON_DEMAND_MAX)
                .keep_alive(KEEP_ALIVE)
                .build()
                .map_err(err)?,
            Role::Plain,
        ),
        Contender::Tpe(p) => {
            let (core, max, queue) = Contender::tpe_sizes(&p, oracle);
            let pool = b
                .min_workers(core)
                .max_workers(max)
                .queue_capacity(queue)
                .keep_alive(KEEP_ALIVE)
                .prestart(true)
                .build()
                .map_err(err)?;
            pool.set_target(core);
            (pool, Role::Tpe { core, max })
        }
        Contender::TokioBlocking => return Ok(Box::new(Tokio::new()?)),
        Contender::RustyPool => return Ok(Box::new(Rusty::new())),
    };
    Ok(Box::new(Ours {
        pool,
        role,
        ctl_before: before,
    }))
}

fn static_pool(b: elastic_pool::Builder, n: usize) -> Result<Pool, elastic_pool::BuildError> {
    b.min_workers(n).max_workers(n).prestart(true).build()
}

enum Role {
    Plain,
    Oracle {
        oracle: Oracle,
        peak: usize,
        current: AtomicUsize,
    },
    Tpe {
        core: usize,
        max: usize,
    },
}

struct Ours {
    pool: Pool,
    role: Role,
    /// Control threads that existed before this pool was built. The pool's own is found
    /// when its CPU time is read: a new thread names itself only once it runs.
    ctl_before: Vec<i32>,
}

impl Sink for Ours {
    fn pool(&self) -> Option<Pool> {
        Some(self.pool.clone())
    }

    fn submit(&self, job: Job) -> bool {
        match &self.role {
            Role::Tpe { max, .. } => match self.pool.try_execute(job) {
                Ok(()) => true,
                Err(TrySubmitError::Overloaded(job)) => {
                    // The queue is full: like ThreadPoolExecutor, add a thread if below max,
                    // else refuse (AbortPolicy).
                    let target = self.pool.stats().target;
                    if target >= *max {
                        return false;
                    }
                    self.pool.set_target(target + 1);
                    self.pool.execute_timeout(job, TPE_GROW_WAIT).is_ok()
                }
                Err(TrySubmitError::ShuttingDown(_)) => false,
            },
            _ => self.pool.execute(job).is_ok(),
        }
    }

    fn live(&self) -> usize {
        self.pool.stats().live
    }

    fn control(&self, now_s: f64) {
        match &self.role {
            Role::Plain => {}
            Role::Oracle {
                oracle,
                peak,
                current,
            } => {
                let want = oracle.max_over(now_s, now_s + ORACLE_LOOKAHEAD_S).max(1);
                if current.swap(want, Relaxed) != want {
                    // A higher floor starts workers at once; the target stops on-demand growth
                    // above it and retires the surplus when it falls.
                    let _ = self.pool.set_bounds(want, *peak);
                    self.pool.set_target(want);
                }
            }
            Role::Tpe { core, .. } => {
                // Growth past core lasts only while the queue is full; afterwards the ceiling
                // follows the threads that remain, so keep-alive can retire them down to core.
                let s = self.pool.stats();
                if s.queued == 0 && s.target > s.live.max(*core) {
                    self.pool.set_target(s.live.max(*core));
                }
            }
        }
    }

    fn threads_spawned(&self) -> u64 {
        self.pool.stats().spawned
    }

    fn controller_cpu_ns(&self) -> u64 {
        control_threads()
            .into_iter()
            .filter(|t| !self.ctl_before.contains(t))
            .filter_map(thread_cpu_ns)
            .sum()
    }

    fn shutdown(&self, timeout: Duration) {
        let _ = self.pool.shutdown_timeout(timeout);
    }
}

/// tokio's blocking pool: a current-thread runtime, so every thread it starts is a blocking
/// thread, counted by the start/stop hooks.
struct Tokio {
    rt: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    live: Arc<AtomicUsize>,
    spawned: Arc<AtomicU64>,
}

impl Tokio {
    fn new() -> Result<Tokio, String> {
        let live = Arc::new(AtomicUsize::new(0));
        let spawned = Arc::new(AtomicU64::new(0));
        let (l1, s1, l2) = (Arc::clone(&live), Arc::clone(&spawned), Arc::clone(&live));
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(ON_DEMAND_MAX)
            .thread_keep_alive(KEEP_ALIVE)
            .on_thread_start(move || {
                l1.fetch_add(1, Relaxed);
                s1.fetch_add(1, Relaxed);
            })
            .on_thread_stop(move || {
                l2.fetch_sub(1, Relaxed);
            })
            .build()
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
        Ok(Tokio {
            handle: rt.handle().clone(),
            rt: Mutex::new(Some(rt)),
            live,
            spawned,
        })
    }
}

impl Sink for Tokio {
    fn submit(&self, job: Job) -> bool {
        drop(self.handle.spawn_blocking(job));
        true
    }

    fn live(&self) -> usize {
        self.live.load(Relaxed)
    }

    fn threads_spawned(&self) -> u64 {
        self.spawned.load(Relaxed)
    }

    fn shutdown(&self, timeout: Duration) {
        let rt = self.rt.lock().map(|mut g| g.take()).unwrap_or(None);
        if let Some(rt) = rt {
            rt.shutdown_timeout(timeout);
        }
    }
}

/// rusty_pool: grows inside `execute` when no worker is idle.
struct Rusty {
    pool: Mutex<Option<rusty_pool::ThreadPool>>,
    spawned: Arc<AtomicU64>,
}

impl Rusty {
    fn new() -> Rusty {
        let spawned = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&spawned);
        let pool = rusty_pool::Builder::new()
            .name("rusty-worker".into())
            .core_size(RUSTY_CORE)
            .max_size(RUSTY_MAX)
            .keep_alive(KEEP_ALIVE)
            .on_worker_start(move || {
                s.fetch_add(1, Relaxed);
            })
            .build();
        Rusty {
            pool: Mutex::new(Some(pool)),
            spawned,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&rusty_pool::ThreadPool) -> R) -> Option<R> {
        self.pool.lock().ok()?.as_ref().map(f)
    }
}

impl Sink for Rusty {
    fn submit(&self, job: Job) -> bool {
        self.with(|p| p.execute(job)).is_some()
    }

    fn live(&self) -> usize {
        self.with(|p| p.get_current_worker_count()).unwrap_or(0)
    }

    fn threads_spawned(&self) -> u64 {
        self.spawned.load(Relaxed)
    }

    fn shutdown(&self, timeout: Duration) {
        let pool = self.pool.lock().map(|mut g| g.take()).unwrap_or(None);
        if let Some(p) = pool {
            p.shutdown_join_timeout(timeout);
        }
    }
}

/// Thread ids of this process's elastic-pool control threads (`elastic-pool-ctl`, which the
/// kernel truncates to 15 bytes).
fn control_threads() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: i32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        comm.trim().starts_with("elastic-pool-ct").then_some(tid)
    })
    .collect()
}

/// CPU time of a thread of this process, ns: `schedstat` (ns) or else `stat` (clock ticks).
fn thread_cpu_ns(tid: i32) -> Option<u64> {
    let base = format!("/proc/self/task/{tid}");
    if let Ok(s) = std::fs::read_to_string(format!("{base}/schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|x| x.parse().ok()) {
            return Some(ns);
        }
    }
    let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| ticks * 1_000_000_000 / hz as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_thread_is_found_and_timed() {
        // Other tests of this binary build pools in parallel, and their control threads can
        // appear between the two listings: try again until a listing sees only this pool's.
        let mut seen = Vec::new();
        for _ in 0..50 {
            let before = control_threads();
            let pool = Pool::builder().max_workers(2).build().unwrap();
            pool.execute(|| ()).unwrap();
            let new: Vec<i32> = control_threads()
                .into_iter()
                .filter(|t| !before.contains(t))
                .collect();
            if new.len() == 1 {
                assert!(thread_cpu_ns(new[0]).is_some());
                pool.shutdown();
                return;
            }
            seen.push(new.len());
            pool.shutdown();
        }
        panic!("never exactly one new control thread per pool: {seen:?}");
    }
}
