//! The real-thread runner: plays a precomputed schedule open loop into a pool, stamps every
//! task's start and end, and samples the pool every 100 ms.
//!
//! The calling thread is the generator: it sleeps until each intended arrival and submits. If
//! it falls behind it submits late, and the task's wait still counts from its intended arrival
//! (no coordinated omission). A second thread samples live workers, queue depth (tasks
//! submitted but not started) and busy workers, drives contenders that need a clock (the
//! oracle, `tpe`) and updates the progress bar. After the last arrival the run lasts to the
//! end of the trace, then waits for the pool to drain.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;

use crate::generator::Schedule;
use crate::oracle::Oracle;
use crate::pools::{Job, Sink};
use crate::score::{quantile, RunData, Sample, TaskRecord, SAMPLE_NS};
use crate::trace::Trace;

/// Longest wait for the pool to finish its backlog after the trace ends.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// One task's stamps, ns since the run's start plus one (0 = not yet).
#[derive(Default)]
struct Slot {
    start: AtomicU64,
    end: AtomicU64,
}

struct Records {
    slots: Vec<Slot>,
    started: AtomicU64,
    completed: AtomicU64,
}

fn since(origin: Instant) -> u64 {
    origin.elapsed().as_nanos() as u64
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Plays `schedule` into `sink` on real threads.
pub fn run(
    trace: &Trace,
    schedule: &Schedule,
    oracle: &Oracle,
    sink: &dyn Sink,
    progress: Option<&ProgressBar>,
) -> RunData {
    let arrivals = &schedule.arrivals;
    let n = arrivals.len();
    let records = Arc::new(Records {
        slots: (0..n).map(|_| Slot::default()).collect(),
        started: AtomicU64::new(0),
        completed: AtomicU64::new(0),
    });
    let submitted = AtomicUsize::new(0);
    let rejected_count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut rejected = vec![false; n];
    let end = Duration::from_secs_f64(trace.duration_s());
    // Warm up the spin calibration before the clock starts.
    if arrivals.iter().any(|a| a.work.is_spin()) {
        crate::task::spin_for(1);
    }
    let origin = Instant::now();

    let samples = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut samples = Vec::with_capacity((end.as_nanos() as u64 / SAMPLE_NS) as usize + 64);
            let mut k = 0u64;
            loop {
                let t_ns = k * SAMPLE_NS;
                sleep_until(origin + Duration::from_nanos(t_ns));
                let now_s = since(origin) as f64 / 1e9;
                sink.control(now_s);
                let live = sink.live();
                let started = records.started.load(Acquire);
                let completed = records.completed.load(Acquire);
                let sub = submitted.load(Acquire) as u64;
                let rej = rejected_count.load(Acquire);
                let queued = sub.saturating_sub(rej).saturating_sub(started) as usize;
                let busy = started.saturating_sub(completed) as usize;
                samples.push(Sample {
                    t_ns,
                    live,
                    busy,
                    queued,
                });
                if let Some(pb) = progress {
                    let p99 = recent_p99_ms(&records, schedule, since(origin));
                    pb.set_position((now_s.min(trace.duration_s())) as u64);
                    pb.set_message(format!(
                        "workers {live:>3} (oracle {:>3}) · queue {queued:>5} · p99 wait {}",
                        oracle.at(now_s),
                        p99.map_or_else(|| "-".to_string(), |x| format!("{x:.1} ms")),
                    ));
                }
                if stop.load(Acquire) {
                    break;
                }
                k += 1;
            }
            samples
        });

        for (i, a) in arrivals.iter().enumerate() {
            sleep_until(origin + Duration::from_nanos(a.at_ns));
            let recs = Arc::clone(&records);
            let work = a.work;
            let job: Job = Box::new(move || {
                let slot = &recs.slots[i];
                slot.start.store(since(origin) + 1, Release);
                recs.started.fetch_add(1, AcqRel);
                work.run();
                slot.end.store(since(origin) + 1, Release);
                recs.completed.fetch_add(1, AcqRel);
            });
            if !sink.submit(job) {
                rejected[i] = true;
                rejected_count.fetch_add(1, Release);
            }
            submitted.store(i + 1, Release);
        }
        // Last to the end of the trace, then drain.
        sleep_until(origin + end);
        let drain_deadline = Instant::now() + DRAIN_LIMIT;
        let total = n as u64;
        while records.completed.load(Acquire) + rejected_count.load(Acquire) < total
            && Instant::now() < drain_deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        // One more sample after the drain, so the worker count is known past the end.
        std::thread::sleep(Duration::from_nanos(SAMPLE_NS));
        stop.store(true, Release);
        sampler.join().expect("the sampler thread does not panic")
    });

    let controller_cpu_ns = sink.controller_cpu_ns();
    let threads_spawned = sink.threads_spawned();
    sink.shutdown(Duration::from_secs(5));

    let records_out = arrivals
        .iter()
        .zip(&records.slots)
        .zip(&rejected)
        .map(|((a, s), &rej)| {
            let stamp = |v: u64| (v > 0).then(|| v - 1);
            TaskRecord {
                intended_ns: a.at_ns,
                start_ns: stamp(s.start.load(Acquire)),
                end_ns: stamp(s.end.load(Acquire)),
                spin: a.work.is_spin(),
                rejected: rej,
            }
        })
        .collect();
    RunData {
        records: records_out,
        samples,
        worker_seconds_exact: None,
        threads_spawned,
        controller_cpu_ns,
    }
}

/// p99 wait of the tasks intended in the last second, for the progress bar. A task not yet
/// started counts with the time it has waited so far.
fn recent_p99_ms(records: &Records, schedule: &Schedule, now_ns: u64) -> Option<f64> {
    let a = &schedule.arrivals;
    let lo = a.partition_point(|x| x.at_ns < now_ns.saturating_sub(1_000_000_000));
    let hi = a.partition_point(|x| x.at_ns < now_ns);
    let mut w: Vec<u64> = (lo..hi)
        .map(|i| {
            let s = records.slots[i].start.load(Relaxed);
            if s > 0 {
                (s - 1).saturating_sub(a[i].at_ns)
            } else {
                now_ns.saturating_sub(a[i].at_ns)
            }
        })
        .collect();
    w.sort_unstable();
    quantile(&w, 0.99).map(|ns| ns as f64 / 1e6)
}
