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
use crate::sample_log::SampleLog;
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// One worker's counters, laid out by cache line (`repr(C)`; checked in the tests below).
///
/// A tick reads line 0, the sample log's unread slots and line 9, and touches the histograms
/// only when a log has been outrun. Every task writes line 0 (and a sampled task one slot
/// line), so a shard that did work since the last tick costs the tick line 0 and the slot
/// lines of its new entries. Line 9 is written only by panics and CPU probes; line 10 holds
/// what the worker writes per sampled task but the tick never reads.
#[derive(Default)]
#[repr(C)]
pub(crate) struct WorkerShard {
    // Line 0.
    pub(crate) completed: AtomicU64,
    /// Nanoseconds spent in finished busy periods (running tasks back to back).
    pub(crate) busy_ns: AtomicU64,
    /// Start of the current busy period (clock ns), or 0 while idle or spinning.
    pub(crate) busy_since: AtomicU64,
    /// Queue entries this worker dequeued (jobs, counting each job of a batch).
    pub(crate) taken: AtomicU64,
    /// Times this worker found the queue empty (ended a busy period).
    pub(crate) idle_entries: AtomicU64,
    /// Sum of the sampled waits, ns (the same as `wait`'s own sum, kept here so that a tick
    /// need not read the histogram's line).
    pub(crate) wait_ns: AtomicU64,
    /// Sum of the sampled run times, ns.
    pub(crate) run_ns: AtomicU64,
    /// The recent records of `wait` (series [`WAIT`]) and `run` (series [`RUN`]), which the
    /// tick folds into its window (see `sample_log`). Its 8-byte header ends line 0; its
    /// slots fill lines 1–8.
    pub(crate) log: SampleLog,
    // Line 9.
    pub(crate) panicked: AtomicU64,
    /// CPU-or-blocking probes of sampled tasks (see `cpu_probe`).
    pub(crate) probe: crate::cpu_probe::ProbeCounters,
    /// Pads line 9 out, so that what sampled tasks write starts a line of its own.
    _line_9: [u64; 4],
    // Line 10.
    /// Number of waits in `wait` (the histogram keeps only per-bucket counts). A window counts
    /// its samples from the log instead.
    pub(crate) wait_samples: AtomicU64,
    /// Number of jobs in `run`.
    pub(crate) run_samples: AtomicU64,
    /// When to probe (the worker's own state, never read by a tick).
    pub(crate) prober: crate::cpu_probe::Prober,
    /// Sampled queue waits.
    pub(crate) wait: Histogram,
    /// Sampled run times (per job; a sampled batch chunk records its mean).
    pub(crate) run: Histogram,
}

/// The sample log series of queue waits.
pub(crate) const WAIT: usize = 0;
/// The sample log series of run times.
pub(crate) const RUN: usize = 1;

impl WorkerShard {
    /// Records one sampled queue wait: the histogram, the sample log, the sample count and
    /// sum. Only the shard's worker calls this.
    #[inline]
    pub(crate) fn record_wait(&self, ns: u64) {
        let i = self.wait.record_n_in_bucket(ns, 1);
        self.log.push(WAIT, i, 1);
        bump(&self.wait_samples, 1);
        bump(&self.wait_ns, ns);
    }

    /// Records `n` jobs that ran `ns` each (a sampled task, or a batch chunk's mean).
    #[inline]
    pub(crate) fn record_run(&self, ns: u64, n: u64) {
        let i = self.run.record_n_in_bucket(ns, n);
        self.log.push(RUN, i, n);
        bump(&self.run_samples, n);
        bump(&self.run_ns, ns.wrapping_mul(n));
    }
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

/// All shards ever handed out, plus the free list, and the tick's read cursor into each
/// shard's sample log (kept here, on the reader's side, not in the shard's lines).
#[derive(Default)]
pub(crate) struct ShardTable {
    all: Vec<Arc<CachePadded<WorkerShard>>>,
    free: Vec<usize>,
    cursors: Vec<u64>,
}

impl ShardTable {
    /// A shard for a new worker, and its index (to give back with [`ShardTable::release`]).
    pub(crate) fn acquire(&mut self) -> (usize, Arc<CachePadded<WorkerShard>>) {
        if let Some(i) = self.free.pop() {
            return (i, Arc::clone(&self.all[i]));
        }
        let s = Arc::new(CachePadded::new(WorkerShard::default()));
        self.all.push(Arc::clone(&s));
        self.cursors.push(0);
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
            t.add(s, now_ns, true);
        }
        t
    }

    /// Moves every log cursor to its log's last published entry (see
    /// [`SampleLog::resync`]).
    pub(crate) fn resync_logs(&mut self) {
        for (s, cursor) in self.all.iter().zip(&mut self.cursors) {
            s.log.resync(cursor);
        }
    }

    /// [`totals`](Self::totals) without the sample counts (`wait_samples` and `run_samples`
    /// stay 0: they sit on a line of their own, and a window counts its samples from the
    /// logs), calling `then` on each shard and its log cursor right after its counters are
    /// read.
    #[inline]
    pub(crate) fn totals_with(
        &mut self,
        now_ns: u64,
        mut then: impl FnMut(&WorkerShard, &mut u64),
    ) -> ShardTotals {
        // First, touch every shard's header line and the first and last of its unread log
        // slots (a worker's entries since the last tick usually span one or two lines),
        // without waiting for any: the loads are independent, so the core has many misses in
        // flight at once. The workers wrote those lines on other cores. Read one shard at a
        // time (its header, then its entries, then the fold), their misses came one after
        // another: a profile (perf, cpu-clock) put more than half of the window's time on the
        // slot loads. See BENCHMARKS.md, session 8.
        let mut mix = 0u32;
        for (s, cursor) in self.all.iter().zip(&self.cursors) {
            mix ^= s.log.touch_unread(*cursor);
        }
        std::hint::black_box(mix);
        let mut t = ShardTotals::default();
        for (s, cursor) in self.all.iter().zip(&mut self.cursors) {
            t.add(s, now_ns, false);
            then(s, cursor);
        }
        t
    }
}

impl ShardTotals {
    /// Adds one shard's counters, with its sample counts if `samples`; `now_ns` closes a busy
    /// period still in progress.
    #[inline]
    fn add(&mut self, s: &WorkerShard, now_ns: u64, samples: bool) {
        self.completed += s.completed.load(Relaxed);
        self.panicked += s.panicked.load(Relaxed);
        let since = s.busy_since.load(Relaxed);
        self.busy_ns += s.busy_ns.load(Relaxed);
        if since != 0 {
            self.busy += 1;
            self.busy_ns += now_ns.saturating_sub(since);
        }
        self.taken += s.taken.load(Relaxed);
        self.idle_entries += s.idle_entries.load(Relaxed);
        self.wait_ns = self.wait_ns.wrapping_add(s.wait_ns.load(Relaxed));
        self.run_ns = self.run_ns.wrapping_add(s.run_ns.load(Relaxed));
        if samples {
            self.wait_samples += s.wait_samples.load(Relaxed);
            self.run_samples += s.run_samples.load(Relaxed);
        }
        self.probe.add(&s.probe);
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerShard;
    use std::mem::offset_of;

    #[test]
    fn what_every_task_writes_sits_in_line_0_and_the_tick_skips_line_10() {
        // Line 0: seven counters and the log's header; lines 1–8: the log's slots.
        assert_eq!(offset_of!(WorkerShard, run_ns), 48);
        assert_eq!(offset_of!(WorkerShard, log), 56);
        assert_eq!(
            offset_of!(WorkerShard, log) + crate::sample_log::SampleLog::<1>::SLOTS_OFFSET,
            64
        );
        assert_eq!(std::mem::size_of::<crate::sample_log::SampleLog>(), 8 + 512);
        // Line 9: what a tick reads that few tasks write.
        assert_eq!(offset_of!(WorkerShard, panicked), 9 * 64);
        assert_eq!(offset_of!(WorkerShard, probe), 9 * 64 + 8);
        // Line 10: what sampled tasks write and a tick does not read.
        assert_eq!(offset_of!(WorkerShard, wait_samples), 10 * 64);
        assert_eq!(offset_of!(WorkerShard, prober), 10 * 64 + 16);
        assert!(offset_of!(WorkerShard, wait) >= 11 * 64);
    }

    #[test]
    fn records_reach_the_histograms_the_log_and_the_counters() {
        let s = WorkerShard::default();
        s.record_wait(5_000);
        s.record_run(2_000_000, 3);
        let mut got = Vec::new();
        s.log
            .read_new(&mut 0, |series, i, n| got.push((series, i, n)))
            .unwrap();
        use crate::histogram::bucket_index;
        assert_eq!(
            got,
            vec![
                (super::WAIT, bucket_index(5_000), 1),
                (super::RUN, bucket_index(2_000_000), 3)
            ]
        );
        let t = {
            let mut table = super::ShardTable::default();
            let (_, sh) = table.acquire();
            sh.record_wait(5_000);
            sh.record_run(2_000_000, 3);
            let tick = table.totals_with(0, |_, _| {});
            assert_eq!(
                (tick.wait_samples, tick.run_samples),
                (0, 0),
                "a tick skips them"
            );
            assert_eq!((tick.wait_ns, tick.run_ns), (5_000, 6_000_000));
            table.totals(0)
        };
        assert_eq!((t.wait_samples, t.wait_ns), (1, 5_000));
        assert_eq!((t.run_samples, t.run_ns), (3, 6_000_000));
        assert_eq!((s.wait.sum_ns(), s.run.sum_ns()), (5_000, 6_000_000));
    }
}
