//! Per-worker counters: each worker writes only its own cache-padded shard.
//!
//! A shard has exactly one writer at a time (the worker that owns it), so its counters are
//! bumped with a plain load + store rather than a locked read-modify-write; readers sum the
//! shards with relaxed loads. Shards are recycled through a free list when workers retire,
//! so the table is bounded by the peak number of concurrent workers and totals never go
//! backwards.
//!
//! Busy time is integrated per busy period, not per task: a worker reads the clock when it
//! starts running tasks after being idle and when it next finds the queue empty, so a
//! saturated worker reads the clock for no task at all (only sampled tasks are timed).

use crate::histogram::Histogram;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// One worker's counters.
#[derive(Default)]
pub(crate) struct WorkerShard {
    pub(crate) completed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    /// Nanoseconds spent in finished busy periods (running tasks back to back).
    pub(crate) busy_ns: AtomicU64,
    /// Start of the current busy period (clock ns), or 0 while idle or spinning.
    pub(crate) busy_since: AtomicU64,
    /// Queue entries this worker dequeued (jobs, counting each job of a batch).
    pub(crate) taken: AtomicU64,
    /// Times this worker found the queue empty (ended a busy period).
    pub(crate) idle_entries: AtomicU64,
    /// Sampled queue waits.
    pub(crate) wait: Histogram,
    /// Sampled run times (per job; a sampled batch chunk records its mean).
    pub(crate) run: Histogram,
    /// Number of waits in `wait` (the histogram keeps only per-bucket counts).
    pub(crate) wait_samples: AtomicU64,
    /// Number of jobs in `run`.
    pub(crate) run_samples: AtomicU64,
    /// CPU-or-blocking probes of sampled tasks (see `cpu_probe`).
    pub(crate) probe: crate::cpu_probe::ProbeCounters,
}

/// Adds to a counter that only the calling thread writes.
#[inline]
pub(crate) fn bump(c: &AtomicU64, by: u64) {
    c.store(c.load(Relaxed).wrapping_add(by), Relaxed);
}

/// Sums of every shard, read at one moment (each counter individually).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShardTotals {
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) busy: usize,
    pub(crate) busy_ns: u64,
    pub(crate) taken: u64,
    pub(crate) idle_entries: u64,
    pub(crate) wait_ns: u64,
    pub(crate) wait_samples: u64,
    pub(crate) run_ns: u64,
    pub(crate) run_samples: u64,
    pub(crate) probe: crate::cpu_probe::ProbeTotals,
}

/// All shards ever handed out, plus the free list.
#[derive(Default)]
pub(crate) struct ShardTable {
    all: Vec<Arc<CachePadded<WorkerShard>>>,
    free: Vec<usize>,
}

impl ShardTable {
    /// A shard for a new worker, and its index (to give back with [`ShardTable::release`]).
    pub(crate) fn acquire(&mut self) -> (usize, Arc<CachePadded<WorkerShard>>) {
        if let Some(i) = self.free.pop() {
            return (i, Arc::clone(&self.all[i]));
        }
        let s = Arc::new(CachePadded::new(WorkerShard::default()));
        self.all.push(Arc::clone(&s));
        (self.all.len() - 1, s)
    }

    /// Every shard (live and retired workers'), for merging histograms.
    pub(crate) fn shards(&self) -> impl Iterator<Item = &WorkerShard> + '_ {
        self.all.iter().map(|s| &***s)
    }

    /// Returns a retired worker's shard; its counts stay in the totals.
    pub(crate) fn release(&mut self, i: usize) {
        self.all[i].busy_since.store(0, Relaxed);
        self.free.push(i);
    }

    /// Sums every shard; `now_ns` closes busy periods still in progress.
    pub(crate) fn totals(&self, now_ns: u64) -> ShardTotals {
        let mut t = ShardTotals::default();
        for s in &self.all {
            t.completed += s.completed.load(Relaxed);
            t.panicked += s.panicked.load(Relaxed);
            let since = s.busy_since.load(Relaxed);
            t.busy_ns += s.busy_ns.load(Relaxed);
            if since != 0 {
                t.busy += 1;
                t.busy_ns += now_ns.saturating_sub(since);
            }
            t.taken += s.taken.load(Relaxed);
            t.idle_entries += s.idle_entries.load(Relaxed);
            t.wait_ns += s.wait.sum_ns();
            t.wait_samples += s.wait_samples.load(Relaxed);
            t.run_ns += s.run.sum_ns();
            t.run_samples += s.run_samples.load(Relaxed);
            t.probe.add(&s.probe);
        }
        t
    }
}
