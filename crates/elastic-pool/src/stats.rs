//! `Stats`: a point-in-time view of a pool's counts.

/// A snapshot of a pool's counts, from [`Pool::stats`](crate::Pool::stats).
///
/// # Consistency
/// Each field is read on its own with relaxed loads, so while the pool is busy the fields
/// are not one atomic snapshot (a task may be counted in `submitted` but not yet in
/// `queued`, for instance). Every counter is monotone, and once the pool is quiescent the
/// fields agree exactly:
///
/// * `submitted = completed + queued + busy + returned` (tasks accepted and not lost);
/// * `live = idle + busy` (plus workers between two tasks, for an instant);
/// * `live = spawned − retired` outside shutdown; `min ≤ live ≤ max` once `min` workers have
///   started (immediately with `prestart`);
/// * `panicked ≤ completed` (a task that panicked still completed: it ran).
///
/// A worker counts a task just after it returns, so a caller that sees a task's effect
/// (or joins its handle) may read `stats()` an instant before the task is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Worker threads alive.
    pub live: usize,
    /// Workers parked waiting for work.
    pub idle: usize,
    /// Workers in a busy period: running tasks, or between two back-to-back tasks.
    pub busy: usize,
    /// Queue entries waiting (a batch chunk counts once).
    pub queued: usize,
    /// Tasks accepted (each job of a batch counts).
    pub submitted: u64,
    /// Tasks that ran, including those that panicked.
    pub completed: u64,
    /// Tasks refused: `rejected_overloaded + rejected_shutdown`.
    pub rejected: u64,
    /// Tasks refused because the queue was full (or stayed full until a timeout).
    pub rejected_overloaded: u64,
    /// Tasks refused because the pool was shutting down.
    pub rejected_shutdown: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Worker threads started.
    pub spawned: u64,
    /// Worker threads that retired (shrink or keep-alive expiry); shutdown exits not counted.
    pub retired: u64,
    /// Thread starts the OS (or the spawn hook) refused.
    pub spawn_failures: u64,
    /// Panics inside the panic handler or the thread start/stop hooks (caught).
    pub hook_panics: u64,
    /// Tasks handed back unrun by `shutdown_now`.
    pub returned: u64,
    /// The current target size: idle workers above it are retired.
    pub target: usize,
    /// How far the pool may grow on demand (a task queued and no worker idle); equal to
    /// `target` unless an autoscaler allows burst headroom.
    pub ceiling: usize,
    /// Times the autoscaler raised the target (0 without one).
    pub scale_ups: u64,
    /// Times the autoscaler lowered the target (0 without one).
    pub scale_downs: u64,
    /// The current lower bound.
    pub min: usize,
    /// The current upper bound.
    pub max: usize,
    /// Sum of sampled queue waits, nanoseconds.
    pub wait_ns_total: u64,
    /// Number of queue waits sampled.
    pub wait_samples: u64,
    /// Sum of sampled run times, nanoseconds.
    pub run_ns_total: u64,
    /// Number of tasks whose run time was sampled.
    pub run_samples: u64,
    /// Busy-time integral: worker-nanoseconds spent running tasks (all tasks, not
    /// sampled), including busy periods still in progress. Its rate of change is the mean
    /// number of busy workers, `a = λ·S`.
    pub busy_ns_total: u64,
}

impl Stats {
    /// Mean sampled queue wait, if any task was sampled.
    pub fn mean_wait(&self) -> Option<std::time::Duration> {
        (self.wait_samples > 0)
            .then(|| std::time::Duration::from_nanos(self.wait_ns_total / self.wait_samples))
    }

    /// Mean sampled run time, if any task was sampled.
    pub fn mean_run(&self) -> Option<std::time::Duration> {
        (self.run_samples > 0)
            .then(|| std::time::Duration::from_nanos(self.run_ns_total / self.run_samples))
    }
}
