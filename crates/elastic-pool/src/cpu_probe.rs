//! Telling CPU work from blocking work: a probed task's voluntary context switches and
//! thread CPU time.
//!
//! # Design note: why not CPU time over busy time
//!
//! The autoscaler must not add threads for CPU-bound work: above the core count they only
//! move the wait from the pool's queue into the OS run queue. The obvious measure, process
//! CPU time divided by the workers' busy (wall-clock) time, cannot tell a task that *blocks*
//! from a task that is *ready but not running*: on a contended or overcommitted machine (a
//! shared VM's steal time, other processes) a spinning task's wall time stretches while its
//! CPU time does not, so CPU work reads as blocking, the ceiling opens, more threads stretch
//! every task further, and the measure falls further still. We saw it: on a 2-vCPU VM, 4 ms
//! spin tasks took 15–18 ms of wall time with half a core in use, the share read 0.3, and the
//! pool grew to ~250 threads.
//!
//! A task that blocks gives up its CPU voluntarily, and the kernel counts that: a thread's
//! *voluntary* context switches (`ru_nvcsw`) go up each time it sleeps, waits on I/O or on a
//! lock, and not when it is preempted, yields, or loses time to the hypervisor. So a probe
//! reads the thread's voluntary switches and CPU clock before and after a task. A task that
//! made no voluntary switch never blocked: however long it took, its wall time beyond its CPU
//! time was spent waiting for a core, which more threads cannot shorten. A task that did block
//! counts its wall time beyond its CPU time as blocked. The CPU share of the work is then
//! `cpu / (cpu + blocked)`, summed over probes: 1 for spin work on any machine, the spin share
//! of the work for a mix of spin and sleep tasks (a contended machine stretches the spin tasks'
//! wall time, not their CPU time), near 0 for I/O.
//!
//! What it costs, measured on a 2-vCPU KVM guest: `getrusage(RUSAGE_THREAD)` 385–481 ns,
//! `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` 660–740 ns (both syscalls: the vDSO serves
//! neither). A probe is one of each at the start and at the end: about 2–2.5 µs. So only wait-sampled tasks are probed, one
//! in [`PROBE_EVERY`] of them per worker, and only on workers whose last task ran at least
//! [`PROBE_MIN_RUN_NS`]: at most ~2% of a probed task, ≤ 0.1% of the work overall. Short
//! tasks are not probed once their length is known: the process CPU guard covers them.
//!
//! The limit: a task that both computes and blocks, on a contended machine, counts its wait
//! for a core as blocked time, so its share reads low. `ru_utime`/`ru_stime` cannot
//! replace the thread CPU clock here: they are tick-sampled (a 2 ms sleep read 3 ms of CPU).
//! Off Linux (no `RUSAGE_THREAD`) nothing is probed and the scaler falls back to process CPU.

use crate::shard::bump;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Probe one in this many wait-sampled tasks, per worker.
pub(crate) const PROBE_EVERY: u32 = 4;

/// Probe only on workers whose previous sampled task ran at least this long (100 µs), so a
/// probe's ~2 µs stays a small share of the task.
pub(crate) const PROBE_MIN_RUN_NS: u64 = 100_000;

/// One worker's probe counters, which the ticks sum. The owning worker is the only writer.
#[derive(Default)]
#[repr(C)]
pub(crate) struct ProbeCounters {
    /// Probed tasks.
    pub(crate) tasks: AtomicU64,
    /// Their thread CPU time, ns.
    pub(crate) cpu_ns: AtomicU64,
    /// Wall time beyond CPU time of the probed tasks that blocked (made a voluntary context
    /// switch), ns. A task that never blocked adds nothing: its extra wall time was spent
    /// ready to run, waiting for a core.
    pub(crate) blocked_ns: AtomicU64,
}

/// One worker's probing state, which only that worker reads (kept apart from
/// [`ProbeCounters`] so that a tick's reads stay on fewer cache lines).
#[derive(Default)]
pub(crate) struct Prober {
    /// Sampled tasks to skip before the next probe.
    countdown: AtomicU32,
    /// Mean run time per job of this worker's last sampled task, ns (0: none yet).
    last_run_ns: AtomicU64,
}

/// A thread's counters at the start of a probed task.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    nvcsw: i64,
    cpu_ns: u64,
}

impl Prober {
    /// Called by the owning worker before a wait-sampled task: a mark if this task is to be
    /// probed.
    #[inline]
    pub(crate) fn begin(&self) -> Option<Mark> {
        let last = self.last_run_ns.load(Relaxed);
        if last != 0 && last < PROBE_MIN_RUN_NS {
            return None;
        }
        let left = self.countdown.load(Relaxed);
        if left > 0 {
            self.countdown.store(left - 1, Relaxed);
            return None;
        }
        self.countdown.store(PROBE_EVERY - 1, Relaxed);
        Mark::now()
    }

    /// Called by the owning worker after a wait-sampled task that ran `run_ns` for `jobs`
    /// jobs, with the mark [`begin`](Self::begin) returned; counts the probe into `out`.
    #[inline]
    pub(crate) fn end(&self, out: &ProbeCounters, mark: Option<Mark>, run_ns: u64, jobs: u64) {
        self.last_run_ns
            .store((run_ns / jobs.max(1)).max(1), Relaxed);
        if let Some((cpu, blocked)) = mark.and_then(|m| m.since(run_ns)) {
            bump(&out.tasks, 1);
            bump(&out.cpu_ns, cpu);
            bump(&out.blocked_ns, blocked);
        }
    }
}

/// Sums of every worker's probe counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProbeTotals {
    pub(crate) tasks: u64,
    pub(crate) cpu_ns: u64,
    pub(crate) blocked_ns: u64,
}

impl ProbeTotals {
    /// Adds one worker's counters.
    #[inline]
    pub(crate) fn add(&mut self, p: &ProbeCounters) {
        self.tasks = self.tasks.wrapping_add(p.tasks.load(Relaxed));
        self.cpu_ns = self.cpu_ns.wrapping_add(p.cpu_ns.load(Relaxed));
        self.blocked_ns = self.blocked_ns.wrapping_add(p.blocked_ns.load(Relaxed));
    }
}

impl Mark {
    /// The calling thread's voluntary switches and CPU time now (`None` off Linux or if the
    /// kernel refuses).
    #[cfg(target_os = "linux")]
    fn now() -> Option<Mark> {
        Some(Mark {
            nvcsw: voluntary_switches()?,
            cpu_ns: thread_cpu_ns()?,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn now() -> Option<Mark> {
        None
    }

    /// For a task that started at this mark (on the same thread) and ran `run_ns` of wall
    /// time: its CPU time, and its blocked time (wall beyond CPU if it made a voluntary
    /// context switch, else 0).
    #[cfg(target_os = "linux")]
    fn since(&self, run_ns: u64) -> Option<(u64, u64)> {
        let blocked = voluntary_switches()? != self.nvcsw;
        let cpu = thread_cpu_ns()?.saturating_sub(self.cpu_ns).min(run_ns);
        Some((cpu, if blocked { run_ns - cpu } else { 0 }))
    }

    #[cfg(not(target_os = "linux"))]
    fn since(&self, _run_ns: u64) -> Option<(u64, u64)> {
        None
    }
}

/// The calling thread's voluntary context switches so far.
#[cfg(target_os = "linux")]
fn voluntary_switches() -> Option<i64> {
    // SAFETY: `rusage` is plain old data, for which all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage` that outlives the call; RUSAGE_THREAD is
    // defined on Linux (since 2.6.26).
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    (rc == 0).then_some(ru.ru_nvcsw as i64)
}

/// The calling thread's CPU time (user + system), ns.
#[cfg(target_os = "linux")]
fn thread_cpu_ns() -> Option<u64> {
    crate::clock::cpu_clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A worker's prober and counters.
    #[derive(Default)]
    struct P {
        prober: Prober,
        counters: ProbeCounters,
    }

    impl P {
        fn begin(&self) -> Option<Mark> {
            self.prober.begin()
        }
        fn end(&self, m: Option<Mark>, run_ns: u64, jobs: u64) {
            self.prober.end(&self.counters, m, run_ns, jobs);
        }
    }

    fn probe(p: &P, task: impl FnOnce()) {
        let m = p.begin();
        let t = Instant::now();
        task();
        p.end(m, t.elapsed().as_nanos() as u64, 1);
    }

    fn totals(p: &P) -> ProbeTotals {
        let mut t = ProbeTotals::default();
        t.add(&p.counters);
        t
    }

    #[test]
    fn a_sleeping_task_counts_as_blocking() {
        // Five 2 ms sleeps, each the first (so probed) task of a fresh prober, summed: on a
        // VM, a stall while the thread is on a core is counted as its CPU time (CI once
        // measured 3.6 ms of CPU in one 2 ms sleep), so one task's share is not reliable,
        // while a few together still read as what the scaler's CPU guard needs (below 1/2).
        let mut t = ProbeTotals::default();
        for _ in 0..5 {
            let p = P::default();
            probe(&p, || std::thread::sleep(Duration::from_millis(2)));
            let one = totals(&p);
            assert_eq!(one.tasks, 1);
            // It blocked, so its wall time beyond CPU time counts as blocked.
            assert!(one.blocked_ns > 0, "{one:?}");
            assert!(one.cpu_ns + one.blocked_ns >= 2_000_000, "{one:?}");
            t.add(&p.counters);
        }
        assert_eq!(t.tasks, 5);
        assert!(t.cpu_ns < t.blocked_ns, "sleeps are mostly blocked: {t:?}");
    }

    #[test]
    fn a_spinning_task_never_counts_as_blocked() {
        let p = P::default();
        // Spin until this thread has used 2 ms of CPU: however long that takes in wall time
        // (a loaded machine), the thread never blocks.
        probe(&p, || {
            let start = thread_cpu_ns().unwrap();
            while thread_cpu_ns().unwrap() - start < 2_000_000 {
                std::hint::spin_loop();
            }
        });
        let t = totals(&p);
        assert_eq!(t.tasks, 1);
        // A page fault served from disk would be a voluntary switch; a test binary's spin
        // loop has none, so nothing counts as blocked, however long the wall time.
        assert!(t.cpu_ns >= 2_000_000, "{t:?}");
        assert_eq!(t.blocked_ns, 0, "{t:?}");
    }

    #[test]
    fn one_in_probe_every_after_the_first_and_none_on_short_tasks() {
        let p = P::default();
        // Long tasks (as far as the counters know): the first sampled task, then one in
        // PROBE_EVERY.
        for _ in 0..(1 + 2 * PROBE_EVERY) {
            let m = p.begin();
            p.end(m, PROBE_MIN_RUN_NS, 1);
        }
        assert_eq!(totals(&p).tasks, 3);
        // Short tasks: never, however many.
        let q = P::default();
        for _ in 0..100 {
            let m = q.begin();
            q.end(m, PROBE_MIN_RUN_NS - 1, 1);
        }
        assert_eq!(
            totals(&q).tasks,
            1,
            "only the first, before its length was known"
        );
    }
}
