//! The worker loop: take a task, run it, spin briefly when the queue runs dry (only while
//! tasks arrive densely), then park on the idle stack until woken, retired or expired.
//!
//! # Design note: when to spin
//!
//! A park/unpark round trip costs a futex call on both sides (about 6 µs for the unpark
//! alone on a 2-vCPU KVM guest), so under load a worker that finds the queue empty spins a
//! little first: the next task usually arrives within microseconds. For a sparse load that
//! spin is pure loss, and not only for the CPU it burns. Measured on that guest (Linux 6.18,
//! EEVDF): with the old spin after every task (crossbeam's `Backoff::snooze`, whose last
//! steps call `sched_yield`), a worker woken for one task after a 1 ms idle gap was queued
//! behind a busy submitter on the submitter's CPU and ran only when the submitter blocked
//! or yielded; without it, the woken worker preempted the submitter inside its submit call
//! (30-45 µs against 10-12 µs submit → task start when the submitter spins). The likely mechanism is the scheduler's lag accounting: a
//! thread that sleeps right after burning CPU, and whose `sched_yield` pushed its deadline
//! a slice out, wakes with a later deadline than the thread that woke it, so it may not
//! preempt it, and under delayed dequeue it stays queued on its old CPU.
//!
//! So the spin is adaptive: a worker spins only when tasks are arriving densely: its busy
//! period ran more than one task, or began from a spin that caught a task, or followed an
//! idle gap (from registering on the idle stack to the first task after it) of at most
//! [`SPIN_GAP_NS`]. A worker woken after a long idle gap for a single task parks again as
//! soon as the queue is empty. Under load the spin is the old one, yields included: a
//! pause-only spin (127 pauses) cost about a quarter of `empty-1p` throughput on 2 vCPUs,
//! where the yields hand the CPU to the submitter. Idle CPU is unaffected: a parked worker never spins.

use crate::shard::WorkerShard;
use crate::shared::{Handler, Shared};
use crate::sleep::{Sleeper, Wake};
use crossbeam_utils::{Backoff, CachePadded};
use std::sync::Arc;

/// The longest idle gap after which a worker still spins when the queue next runs dry: a
/// few futex round trips. Gaps this short mean tasks arrive densely enough for a spin of a
/// few microseconds to catch the next one.
const SPIN_GAP_NS: u64 = 50_000;

/// Whether a worker whose busy period just ended should spin before parking: the period ran
/// `tasks` tasks and began at `began_ns` (0: unknown), after an idle registration at
/// `parked_ns` (`None`: it began from a spin that caught a task).
fn spin_pays_after(tasks: u32, parked_ns: Option<u64>, began_ns: u64) -> bool {
    tasks > 1
        || match parked_ns {
            None => true,
            Some(parked) => began_ns != 0 && began_ns.saturating_sub(parked) <= SPIN_GAP_NS,
        }
}

/// Spins briefly, looking at the queue between rounds: crossbeam's `Backoff::snooze`, a
/// few microseconds of pause instructions, then a few `sched_yield`s (on a machine with
/// fewer CPUs than threads, the yields let the submitter run and produce the next task).
fn spin_take<J: Send + 'static, H: Handler<J>>(
    shared: &Shared<J, H>,
) -> Option<crate::shared::Task<J>> {
    let backoff = Backoff::new();
    while !backoff.is_completed() {
        backoff.snooze();
        if let Some(t) = shared.try_take() {
            return Some(t);
        }
    }
    None
}

/// Why the loop ended.
enum Exit {
    /// Won a retirement compare-and-swap: `live` is already decremented.
    Retired,
    /// Shutdown: the queue is empty and the pool is draining.
    Shutdown,
}

/// Body of every worker thread.
pub(crate) fn run<J: Send + 'static, H: Handler<J>>(
    shared: Arc<Shared<J, H>>,
    shard_idx: usize,
    shard: Arc<CachePadded<WorkerShard>>,
) {
    shared.enter_worker();
    shared.run_hook(shared.config.on_start.as_ref());
    let me = Sleeper::for_current_thread();
    let exit = work(&shared, &shard, &me);
    if shard.busy_since.load(std::sync::atomic::Ordering::Relaxed) != 0 {
        shared.end_busy(&shard);
    }
    if let Exit::Shutdown = exit {
        shared.exit_for_shutdown();
    }
    shared.run_hook(shared.config.on_stop.as_ref());
    shared.worker_exited(shard_idx);
}

fn work<J: Send + 'static, H: Handler<J>>(
    shared: &Shared<J, H>,
    shard: &WorkerShard,
    me: &crate::sync::Arc<Sleeper>,
) -> Exit {
    // Tasks run in the current busy period (0: idle).
    let mut busy = 0u32;
    // Whether to spin when the queue runs dry, and when this worker last registered as idle
    // (`None`: its current busy period began from a spin, not from the idle stack).
    let mut spin_pays = false;
    let mut parked_ns: Option<u64> = None;
    // Runs one task, opening a busy period first if needed. Returns whether to retire.
    let run = |task, busy: &mut u32| {
        if *busy == 0 {
            shared.begin_busy(shard);
        }
        *busy = busy.saturating_add(1);
        shared.run_task(task, shard);
        shared.should_retire_busy()
    };
    loop {
        // Busy phase: run tasks back to back.
        if let Some(task) = shared.try_take() {
            if run(task, &mut busy) {
                return Exit::Retired;
            }
            continue;
        }
        // Spin next if tasks are arriving densely: this busy period found a backlog (more
        // than one task), or it began from a caught spin, or the idle gap before it, from the
        // last registration on the idle stack to its first task (`busy_since`, stamped by
        // `begin_busy`), was short.
        if busy > 0 {
            let began = shard.busy_since.load(std::sync::atomic::Ordering::Relaxed);
            spin_pays = spin_pays_after(busy, parked_ns, began);
            shared.end_busy(shard);
            busy = 0;
        }
        // Brief spin, only while tasks arrive densely (see the design note).
        let found = if spin_pays { spin_take(shared) } else { None };
        if let Some(task) = found {
            parked_ns = None;
            if run(task, &mut busy) {
                return Exit::Retired;
            }
            continue;
        }
        if shared.is_draining() {
            // Every push happened before `draining` was set, so an empty look now is final.
            match shared.try_take() {
                Some(task) => {
                    run(task, &mut busy);
                    continue;
                }
                None => return Exit::Shutdown,
            }
        }
        // Idle phase: register, look once more (see sleep.rs for why), then park.
        let now = shared.clock.now_ns();
        parked_ns = Some(now);
        shared.sleepers.register_at(me, now);
        if let Some(task) = shared.try_take() {
            let _ = shared.sleepers.cancel(me);
            if run(task, &mut busy) {
                return Exit::Retired;
            }
            continue;
        }
        if shared.is_draining() {
            let _ = shared.sleepers.cancel(me);
            continue;
        }
        match shared.sleepers.wait(me, shared.idle_deadline()) {
            Wake::Notified => {}
            Wake::Retire => {
                if shared.try_retire_above(shared.target_floor()) {
                    return Exit::Retired;
                }
            }
            Wake::TimedOut => {
                if shared.try_retire_above(shared.keep_alive_floor()) {
                    return Exit::Retired;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{spin_pays_after, SPIN_GAP_NS};

    #[test]
    fn one_task_after_a_long_idle_gap_parks_at_once() {
        assert!(!spin_pays_after(1, Some(1_000), 1_000 + SPIN_GAP_NS + 1));
        assert!(
            !spin_pays_after(1, Some(1_000), 0),
            "unknown start: no spin"
        );
    }

    #[test]
    fn dense_arrivals_spin() {
        // A backlog: more than one task in the period, whatever the gap before it.
        assert!(spin_pays_after(2, Some(1_000), 1_000 + 10 * SPIN_GAP_NS));
        // A short gap before a single task.
        assert!(spin_pays_after(1, Some(1_000), 1_000 + SPIN_GAP_NS));
        // The period began from a spin that caught a task.
        assert!(spin_pays_after(1, None, 5_000));
    }
}
