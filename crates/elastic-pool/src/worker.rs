//! The worker loop: take a task, run it, spin briefly when the queue runs dry, then park on
//! the idle stack until woken, retired or expired.

use crate::shard::WorkerShard;
use crate::shared::{Handler, Shared};
use crate::sleep::{Sleeper, Wake};
use crossbeam_utils::{Backoff, CachePadded};
use std::sync::Arc;

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
    let mut busy = false;
    // Runs one task, opening a busy period first if needed. Returns whether to retire.
    let run = |task, busy: &mut bool| {
        if !*busy {
            shared.begin_busy(shard);
            *busy = true;
        }
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
        if busy {
            shared.end_busy(shard);
            busy = false;
        }
        // Brief spin: under load the next task usually arrives within microseconds, and a
        // park/unpark round trip costs a futex call on both sides.
        let backoff = Backoff::new();
        let mut found = None;
        while !backoff.is_completed() {
            backoff.snooze();
            if let Some(t) = shared.try_take() {
                found = Some(t);
                break;
            }
        }
        if let Some(task) = found {
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
        shared.sleepers.register_at(me, shared.clock.now_ns());
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
