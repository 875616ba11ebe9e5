//! The worker loop: take a task, run it, spin briefly when the queue runs dry (only while
//! tasks arrive densely), then park on the idle stack until woken, retired or expired.
//!
//! # Design note: when to spin
//!
//! A park/unpark round trip costs a futex call on both sides (about 6 µs for the unpark
//! alone on a 2-vCPU KVM guest), so under load a worker that finds the queue empty spins a
//! little first: the next task usually arrives within microseconds. For a sparse load that
//! spin is pure loss, and not only the CPU it burns: the scheduler charges it to the worker.
//! Under EEVDF (Linux ≥ 6.6) a thread that goes to sleep having run more than its share
//! keeps a negative lag, and with `DELAY_DEQUEUE` it even stays queued on its old CPU until
//! that lag is paid back; when it is woken it is then neither moved to a free CPU nor allowed
//! to preempt the submitter, and it waits for the submitter to block or for the tick. The
//! old spin (crossbeam's `Backoff::snooze`, whose last steps call `sched_yield`, which also
//! pushes the thread's deadline a whole slice out) made a parked pool of 2 wake in 30-45 µs
//! where a bare park/unpark takes about 9 µs (`bench --scenario wake`).
//!
//! So the spin is adaptive and short: a worker spins (pause instructions only, never
//! `yield`, 127 of them) only when tasks are arriving densely: its busy period ran more
//! than one task, or began from a spin that caught a task, or followed an idle gap (from
//! registering on the idle stack to the first task after it) of at most [`SPIN_GAP_NS`].
//! A worker woken after a long idle gap for a single task parks again as soon as the queue
//! is empty. Idle CPU is unaffected: a parked worker never spins.

use crate::shard::WorkerShard;
use crate::shared::{Handler, Shared};
use crate::sleep::{Sleeper, Wake};
use crossbeam_utils::CachePadded;
use std::sync::Arc;

/// The longest idle gap after which a worker still spins when the queue next runs dry: a
/// few futex round trips. Gaps this short mean tasks arrive densely enough for a spin of a
/// few microseconds to catch the next one.
const SPIN_GAP_NS: u64 = 50_000;

/// Spin steps before parking: step `k` spins `2^k` pause instructions, then looks at the
/// queue (127 pauses, a few microseconds, in all).
const SPIN_STEPS: u32 = 7;

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

/// Spins briefly, looking at the queue between rounds. Never yields the CPU: see the design
/// note for why a `sched_yield` here delays this worker's next wake.
fn spin_take<J: Send + 'static, H: Handler<J>>(
    shared: &Shared<J, H>,
) -> Option<crate::shared::Task<J>> {
    for step in 0..SPIN_STEPS {
        for _ in 0..1u32 << step {
            std::hint::spin_loop();
        }
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
                if shared.try_retire_above(shared.min_floor()) {
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
