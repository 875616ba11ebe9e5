//! Per-window signals: fold the workers' sample logs (or merge the shards), take the delta
//! since the last window, compute quantiles, rates and utilisation, and smooth them.
//!
//! An autoscaler needs the *recent* distribution, not the one since start: after a single
//! spike a cumulative p99 would stay high for ever. So each window holds only the records made
//! since the previous one: usually the entries each worker's sample log gained (see
//! `sample_log.rs`), otherwise — when a worker recorded more than its log holds — the
//! difference of two cumulative merges of the shards (which only ever count up); the previous
//! cumulative snapshot is kept in step on both paths. Everything reported comes from the
//! window. The state lives behind one mutex that only the control thread (or a caller of
//! [`Pool::metrics`](crate::Pool::metrics) on a pool without a control tick) takes, and a window
//! is computed without allocating.

use crate::ewma::{Ewma, PeakEwma};
use crate::histogram::{BucketSet, Snapshot};
use crate::shard::ShardTotals;
use crate::shared::{Handler, Shared};
use crate::stats::Stats;
use crate::sync::lock_std as lock;
use std::time::Duration;

/// Time constant for the smoothed arrival rate and p99 wait (control.md: τ ≈ 5 s).
const RATE_TAU: Duration = Duration::from_secs(5);
/// Time constant for the smoothed service time (τ ≈ 10 s).
const SERVICE_TAU: Duration = Duration::from_secs(10);
/// The process CPU clock is read at most this often (1 s): see `close_window`.
const CPU_READ_NS: u64 = 1_000_000_000;

/// Quantiles of one window's sampled durations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Quantiles {
    /// Samples behind the figures (sampled tasks only: see
    /// [`Builder::wait_sampling`](crate::Builder::wait_sampling)).
    pub samples: u64,
    /// Median.
    pub p50: Option<Duration>,
    /// 90th percentile.
    pub p90: Option<Duration>,
    /// 99th percentile.
    pub p99: Option<Duration>,
    /// 99.9th percentile.
    pub p999: Option<Duration>,
    /// Mean.
    pub mean: Option<Duration>,
}

impl Quantiles {
    /// The figures of a window `s` holding `n` records, all in the buckets of `set`, read in
    /// the pass that empties it (into `into`, if given: see
    /// [`Snapshot::drain_quantiles_in`]).
    fn take(s: &mut Snapshot, n: u64, set: &BucketSet, into: Option<&mut Snapshot>) -> Self {
        let mean = (n > 0).then(|| Duration::from_nanos((s.sum_ns() as f64 / n as f64) as u64));
        let [p50, p90, p99, p999] = s
            .drain_quantiles_in([0.5, 0.9, 0.99, 0.999], n, set, into)
            .map(|v| v.map(Duration::from_nanos));
        Quantiles {
            samples: n,
            p50,
            p90,
            p99,
            p999,
            mean,
        }
    }
}

/// What the pool measured over one window (the time since the previous window).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    /// Length of the window.
    pub duration: Duration,
    /// Tasks accepted in the window (exact).
    pub arrivals: u64,
    /// Tasks that finished running in the window (exact).
    pub completions: u64,
    /// Tasks refused in the window (exact).
    pub rejected: u64,
    /// Tasks dequeued by workers in the window (exact).
    pub dequeued: u64,
    /// Arrivals per second.
    pub arrival_rate: f64,
    /// Completions per second.
    pub completion_rate: f64,
    /// Worker-seconds spent running tasks in the window (busy-time integral).
    pub busy_seconds: f64,
    /// Mean busy workers, `a = busy_seconds / duration` (= λ·S by Little's law).
    pub busy_workers: f64,
    /// `busy_workers / live`, 0..1.
    pub utilisation: f64,
    /// Queue-wait distribution of the window.
    pub wait: Quantiles,
    /// Service-time (run time) distribution of the window.
    pub service: Quantiles,
    /// Queue depth at the window's end.
    pub queue_depth: usize,
    /// Live workers at the window's end.
    pub live: usize,
    /// Idle (parked) workers at the window's end.
    pub idle: usize,
    /// No worker ran out of work at any moment of the window and none is idle now.
    pub saturated: bool,
    /// Process CPU time divided by `elapsed × cpus` (Unix only). The process CPU clock is
    /// read at most once a second (the kernel walks every thread to answer), so this spans
    /// the last second or more of activity, not necessarily this window alone.
    pub cpu_util: Option<f64>,
    /// Sampled tasks probed in the window for CPU versus blocking work (Linux only; see
    /// [`cpu_share`](Self::cpu_share)).
    pub cpu_probes: u64,
    /// Thread CPU time of the probed tasks, seconds.
    pub cpu_probe_cpu_seconds: f64,
    /// Wall time beyond CPU time of the probed tasks that blocked (made a voluntary context
    /// switch), seconds. A task that never blocked adds nothing here: whatever its wall time,
    /// it was running or waiting for a core.
    pub cpu_probe_blocked_seconds: f64,
    /// Time since a worker last dequeued a task (window granularity).
    pub since_last_dequeue: Duration,
    /// The window's distributions came from merging every worker's full histograms, because
    /// some worker recorded more than [`sample_log::CAPACITY`](crate::sample_log::CAPACITY)
    /// entries (a sampled task writes two) since the last window. Otherwise they came from the
    /// workers' sample logs, at a cost in proportion to the samples. The figures are the same
    /// either way.
    pub merged: bool,
}

impl Window {
    /// The CPU share of the probed work, `cpu / (cpu + blocked)`, 0..1 (`None`: nothing
    /// probed in the window). 1 for CPU-bound work even when a busy machine stretches its
    /// wall time; near 0 for work that blocks.
    pub fn cpu_share(&self) -> Option<f64> {
        let total = self.cpu_probe_cpu_seconds + self.cpu_probe_blocked_seconds;
        (self.cpu_probes > 0 && total > 0.0)
            .then(|| (self.cpu_probe_cpu_seconds / total).clamp(0.0, 1.0))
    }
}

/// Smoothed signals (time-aware EWMA; the p99 is a peak-EWMA that takes rises at once).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Smoothed {
    /// Arrivals per second.
    pub arrival_rate: Option<f64>,
    /// Mean service time.
    pub service_time: Option<Duration>,
    /// p99 queue wait.
    pub wait_p99: Option<Duration>,
}

/// Everything the pool measures, from [`Pool::metrics`](crate::Pool::metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    /// The most recent window. With autoscaling it is the last control tick's; without, it
    /// runs from the previous `metrics()` call to this one.
    pub window: Window,
    /// Smoothed values as of the end of `window`.
    pub smoothed: Smoothed,
    /// Exact totals since the pool started. Where `metrics()` closed the window itself (no
    /// control tick), `wait_samples` and `run_samples` are those of the windows so far: the
    /// same as the shards' counts, except for records published while a window that fell
    /// back to the full merge ([`Window::merged`]) resynchronised the logs, which appear in
    /// the next merged window.
    pub totals: Stats,
    /// The wait-sampling rate in force (1 = every task).
    pub wait_sampling: u32,
}

/// Cumulative counters at the end of the previous window.
#[derive(Clone, Copy, Default)]
struct Counts {
    submitted: u64,
    completed: u64,
    rejected: u64,
    busy_ns: u64,
    taken: u64,
    idle_entries: u64,
    probe: crate::cpu_probe::ProbeTotals,
}

/// Reads the process's CPU time (user + system, every thread) with
/// `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`: one syscall (the vDSO does not serve this
/// clock), no file and no text to parse. With 71 threads it measured ~2.3 µs, against ~3.3 µs
/// for `getrusage(RUSAGE_SELF)` (the same per-thread sum in the kernel, then a user/system
/// split we do not need) and ~9 µs for a `pread` of `/proc/self/stat` before parsing. The
/// kernel still walks every thread, so the cost grows with the thread count. `None` where the
/// clock is missing (not Unix) or refuses.
#[derive(Default)]
struct CpuClock;

impl CpuClock {
    /// Process CPU (user + system) in nanoseconds.
    #[cfg(unix)]
    fn read_ns(&mut self) -> Option<u64> {
        crate::clock::cpu_clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
    }

    /// Process CPU: not measured off Unix.
    #[cfg(not(unix))]
    fn read_ns(&mut self) -> Option<u64> {
        None
    }
}

/// The window machinery's state. Fixed size: every buffer is allocated once.
pub(crate) struct SignalState {
    cum_wait: Box<Snapshot>,
    prev_wait: Box<Snapshot>,
    /// The window being built; empty between windows (reading its quantiles empties it).
    win_wait: Box<Snapshot>,
    cum_run: Box<Snapshot>,
    prev_run: Box<Snapshot>,
    win_run: Box<Snapshot>,
    prev: Counts,
    /// The shard totals the last window read, with the sample counts of every window so far
    /// (the tick does not read the shards' own sample counts: see `ShardTable::totals_with`).
    totals: ShardTotals,
    last_ns: u64,
    last_dequeue_ns: u64,
    /// Process CPU at the last read, and when it was read.
    prev_cpu: Option<(u64, u64)>,
    /// The last process CPU utilisation computed (carried between reads).
    cpu_util: Option<f64>,
    cpu: CpuClock,
    lambda: Ewma,
    service: Ewma,
    wait_p99: PeakEwma,
    latest: Window,
}

impl SignalState {
    pub(crate) fn new() -> Self {
        SignalState {
            cum_wait: Box::default(),
            prev_wait: Box::default(),
            win_wait: Box::default(),
            cum_run: Box::default(),
            prev_run: Box::default(),
            win_run: Box::default(),
            prev: Counts::default(),
            totals: ShardTotals::default(),
            last_ns: 0,
            last_dequeue_ns: 0,
            prev_cpu: None,
            cpu_util: None,
            cpu: CpuClock,
            lambda: Ewma::new(RATE_TAU),
            service: Ewma::new(SERVICE_TAU),
            wait_p99: PeakEwma::new(RATE_TAU),
            latest: Window::default(),
        }
    }

    /// The smoothed values as of the last window.
    pub(crate) fn smoothed(&self) -> Smoothed {
        Smoothed {
            arrival_rate: self.lambda.value(),
            service_time: self
                .service
                .value()
                .map(|s| Duration::from_secs_f64(s.max(0.0))),
            wait_p99: self
                .wait_p99
                .value()
                .map(|s| Duration::from_secs_f64(s.max(0.0))),
        }
    }

    /// The last completed window.
    pub(crate) fn latest(&self) -> Window {
        self.latest
    }
}

impl<J: Send + 'static, H: Handler<J>> Shared<J, H> {
    /// Closes the current window at `now_ns` and returns it. Allocates nothing.
    pub(crate) fn close_window(&self, st: &mut SignalState, now_ns: u64) -> Window {
        // The window's histograms. Usually from the shards' sample logs: each holds the
        // bucket of its shard's last `sample_log::CAPACITY` records, so this reads about as
        // many entries as samples arrived (see sample_log.rs). If a worker recorded more than
        // that since the last window, its log was overrun and the window comes from merging
        // every shard's full histogram instead (the cumulative snapshots are kept in step on
        // both paths for exactly that case).
        let mut merged = false;
        // The buckets the window's histograms use (all others are zero) and their records.
        let mut used = [BucketSet::default(); 2];
        let mut samples = [0u64; 2];
        let t = {
            let mut table = lock(self.shards_table());
            // One pass: each shard's counters, then its new log entries (the log's header
            // shares the line just read; a quiet shard costs nothing more).
            // Indexed by series: shard::WAIT = 0, shard::RUN = 1. The window snapshots are
            // empty here: the last window's quantiles emptied them.
            let mut win = [&mut *st.win_wait, &mut *st.win_run];
            let mut lapped = false;
            let t = table.totals_with(now_ns, |s, cursor| {
                lapped = lapped
                    || s.log
                        .read_new(cursor, |series, i, n| {
                            win[series].add_to_bucket(i, n);
                            used[series].insert(i);
                            samples[series] = samples[series].wrapping_add(n);
                        })
                        .is_err();
            });
            if !lapped {
                st.win_wait
                    .set_sum(t.wait_ns.saturating_sub(st.prev_wait.sum_ns()));
                st.win_run
                    .set_sum(t.run_ns.saturating_sub(st.prev_run.sum_ns()));
                // The quantiles below add the window into `prev_*`, which stays the
                // cumulative snapshot for the next lap.
            } else {
                // delta_into below writes every bucket, over whatever the fold added.
                merged = true;
                used = [BucketSet::all(); 2];
                st.cum_wait.clear();
                st.cum_run.clear();
                st.cum_wait.add_histograms(table.shards().map(|s| &s.wait));
                st.cum_run.add_histograms(table.shards().map(|s| &s.run));
                table.resync_logs();
                st.cum_wait.delta_into(&st.prev_wait, &mut st.win_wait);
                st.cum_run.delta_into(&st.prev_run, &mut st.win_run);
                samples = [st.win_wait.count(), st.win_run.count()];
                std::mem::swap(&mut st.prev_wait, &mut st.cum_wait);
                std::mem::swap(&mut st.prev_run, &mut st.cum_run);
            }
            drop(table);
            t
        };

        let (submitted, rejected) = self.submit_totals();
        let now = Counts {
            submitted,
            completed: t.completed,
            rejected,
            busy_ns: t.busy_ns,
            taken: t.taken,
            idle_entries: t.idle_entries,
            probe: t.probe,
        };
        let p = st.prev;
        st.prev = now;
        let first = st.last_ns == 0;
        let dt_ns = if first {
            now_ns
        } else {
            now_ns.saturating_sub(st.last_ns)
        }
        .max(1);
        st.last_ns = now_ns;
        let dt = dt_ns as f64 / 1e9;

        let dequeued = now.taken.wrapping_sub(p.taken);
        if dequeued > 0 || st.last_dequeue_ns == 0 {
            st.last_dequeue_ns = now_ns;
        }
        // Process CPU is only consulted to refuse growth; a window with no task run needs
        // none. The kernel sums every thread's times to answer (~2–4 µs with 64 workers, most
        // of a tick), and the CPU-bound guard's main evidence is the per-task probe (see
        // cpu_probe.rs), so the clock is read at most once per CPU_READ_NS and the figure
        // carried between reads.
        let idle_window = now.taken == p.taken && now.busy_ns == p.busy_ns;
        if idle_window {
            st.prev_cpu = None;
            st.cpu_util = None;
        } else if match st.prev_cpu {
            None => true,
            Some((_, at)) => now_ns.saturating_sub(at) >= CPU_READ_NS,
        } {
            let read = st.cpu.read_ns();
            st.cpu_util = match (read, st.prev_cpu) {
                (Some(c), Some((prev, at))) if !first && now_ns > at => Some(
                    (c.saturating_sub(prev) as f64 / ((now_ns - at) as f64))
                        / crate::clock::cpu_count() as f64,
                ),
                _ => None,
            };
            st.prev_cpu = read.map(|c| (c, now_ns));
        }
        let cpu_util = st.cpu_util;
        let probe_cpu = now.probe.cpu_ns.wrapping_sub(p.probe.cpu_ns);
        let probe_blocked = now.probe.blocked_ns.wrapping_sub(p.probe.blocked_ns);

        let live = self.live_now();
        let idle = self.sleepers.idle().min(live);
        let busy_seconds = now.busy_ns.wrapping_sub(p.busy_ns) as f64 / 1e9;
        let busy_workers = busy_seconds / dt;
        let arrivals = now.submitted.wrapping_sub(p.submitted);
        let completions = now.completed.wrapping_sub(p.completed);
        let (wait_samples, run_samples) = (st.totals.wait_samples, st.totals.run_samples);
        st.totals = t;
        let w = Window {
            duration: Duration::from_nanos(dt_ns),
            arrivals,
            completions,
            rejected: now.rejected.wrapping_sub(p.rejected),
            dequeued,
            arrival_rate: arrivals as f64 / dt,
            completion_rate: completions as f64 / dt,
            busy_seconds,
            busy_workers,
            utilisation: if live > 0 {
                (busy_workers / live as f64).min(1.0)
            } else {
                0.0
            },
            // On the log path the window joins the cumulative snapshot here; a merged window's
            // is already there.
            wait: Quantiles::take(
                &mut st.win_wait,
                samples[0],
                &used[0],
                (!merged).then_some(&mut *st.prev_wait),
            ),
            service: Quantiles::take(
                &mut st.win_run,
                samples[1],
                &used[1],
                (!merged).then_some(&mut *st.prev_run),
            ),
            queue_depth: self.queue_len(),
            live,
            idle,
            saturated: live > 0 && idle == 0 && now.idle_entries == p.idle_entries,
            cpu_util,
            cpu_probes: now.probe.tasks.wrapping_sub(p.probe.tasks),
            cpu_probe_cpu_seconds: probe_cpu as f64 / 1e9,
            cpu_probe_blocked_seconds: probe_blocked as f64 / 1e9,
            since_last_dequeue: Duration::from_nanos(now_ns.saturating_sub(st.last_dequeue_ns)),
            merged,
        };
        st.totals.wait_samples = wait_samples.wrapping_add(w.wait.samples);
        st.totals.run_samples = run_samples.wrapping_add(w.service.samples);
        st.lambda.update(w.arrival_rate, now_ns);
        if let Some(m) = w.service.mean {
            st.service.update(m.as_secs_f64(), now_ns);
        }
        if let Some(p99) = w.wait.p99 {
            st.wait_p99.update(p99.as_secs_f64(), now_ns);
        }
        st.latest = w;
        w
    }

    /// Cumulative histograms over every shard.
    pub(crate) fn cumulative_histograms(&self, wait: &mut Snapshot, run: &mut Snapshot) {
        wait.clear();
        run.clear();
        let table = lock(self.shards_table());
        wait.add_histograms(table.shards().map(|s| &s.wait));
        run.add_histograms(table.shards().map(|s| &s.run));
    }

    /// The pool's [`Metrics`]: with a control tick, the last tick's window; otherwise a
    /// window closed now.
    pub(crate) fn metrics(&self) -> Metrics {
        let ticking = self.autoscale.is_some();
        let mut st = lock(&self.signals);
        let (window, totals) = if ticking && st.last_ns != 0 {
            (st.latest(), self.stats())
        } else {
            let now = self.clock.now_ns();
            let w = self.close_window(&mut st, now);
            // The exact totals as the window saw them, without reading the shards and the
            // contended pool counters again.
            (
                w,
                self.stats_with(st.totals, Some((w.live, w.idle, w.queue_depth))),
            )
        };
        Metrics {
            window,
            smoothed: st.smoothed(),
            totals,
            wait_sampling: self.sample_every(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CpuClock;

    #[test]
    #[cfg(unix)]
    fn reads_this_process_and_counts_up() {
        let mut c = CpuClock;
        let a = c.read_ns().expect("CLOCK_PROCESS_CPUTIME_ID on Unix");
        // Burn CPU until the clock moves (it is per-process CPU time, so this terminates).
        let mut x = 0u64;
        let b = loop {
            for k in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(k));
            }
            let b = c.read_ns().unwrap();
            if b > a {
                break b;
            }
        };
        assert!(b > a);
    }
}
