//! Faults the pool must survive: refused threads (through `Builder::spawn_hook`), panicking
//! hooks on an autoscaled pool, tasks that block until released, tasks that submit to their
//! own full pool, a pool dropped from inside its own task, and many pools on one controller
//! with one dropped while it runs. Single faults on plain pools are in `tests/pool.rs`.
#![cfg(not(loom))]

mod common;
use common::{wait_until, Latch, OpenOnDrop, PATIENCE};
use elastic_pool::policy::Policy;
use elastic_pool::{Controller, Pool, SubmitTimeoutError, TrySubmitError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// A fast-ticking policy so that autoscaling tests see many ticks in little time.
fn fast(min: usize, max: usize) -> Policy {
    Policy {
        min_workers: min,
        max_workers: max,
        tick_ms: 20.0,
        starvation_ms: 50.0,
        scale_down_window_s: 0.2,
        keep_alive_s: 0.2,
        rate_tau_s: 0.5,
        service_tau_s: 0.5,
        ..Policy::default()
    }
}

/// Lets every thread start again when dropped (for the same reason as [`OpenOnDrop`]: a
/// graceful shutdown waits for the queue, which needs a worker).
struct AllowOnDrop(Arc<AtomicBool>);

impl Drop for AllowOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// A spawn hook that lets through the first `allow` thread starts and refuses the rest while
/// `open` is false, counting every call.
struct Refuser {
    calls: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    open: Arc<AtomicBool>,
}

impl Refuser {
    fn new() -> Self {
        Refuser {
            calls: counter(),
            refused: counter(),
            open: Arc::new(AtomicBool::new(false)),
        }
    }

    fn hook(&self, allow: usize) -> impl Fn() -> std::io::Result<()> + Send + Sync + 'static {
        let (calls, refused, open) = (
            Arc::clone(&self.calls),
            Arc::clone(&self.refused),
            Arc::clone(&self.open),
        );
        move || {
            let n = calls.fetch_add(1, SeqCst);
            if n < allow || open.load(SeqCst) {
                Ok(())
            } else {
                refused.fetch_add(1, SeqCst);
                Err(std::io::Error::other("injected: the OS refused a thread"))
            }
        }
    }
}

#[test]
fn autoscaler_backs_off_when_threads_are_refused_and_recovers() {
    let r = Refuser::new();
    let pool = Pool::builder()
        .autoscale(fast(1, 8))
        .spawn_hook(r.hook(1))
        .build()
        .unwrap();
    let _allow = AllowOnDrop(Arc::clone(&r.open));
    // One worker held by a blocker, and a backlog the autoscaler wants more workers for.
    let latch = Latch::new();
    let _open = OpenOnDrop(latch.clone());
    let l = latch.clone();
    pool.execute(move || l.wait()).unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().busy == 1));
    let done = counter();
    for _ in 0..20 {
        let d = Arc::clone(&done);
        pool.execute(move || {
            d.fetch_add(1, SeqCst);
        })
        .unwrap();
    }
    // The starvation backstop and the model both ask for workers; every start is refused.
    assert!(wait_until(PATIENCE, || r.refused.load(SeqCst) >= 2));
    assert!(
        wait_until(PATIENCE, || pool.stats().target > 1),
        "the autoscaler wants more workers: {:?}",
        pool.stats()
    );
    // Backoff, not a hot loop: the delay doubles from 10 ms to 1 s, so over 2 s at most a
    // dozen attempts happen (a retry per 20 ms tick would be 100, a hot loop thousands).
    let span = Duration::from_secs(2);
    let before = r.calls.load(SeqCst);
    let t0 = Instant::now();
    std::thread::sleep(span); // the measurement span, not a synchronisation
    let attempts = r.calls.load(SeqCst) - before;
    let elapsed = t0.elapsed();
    assert!(
        attempts <= 15,
        "{attempts} thread starts attempted in {elapsed:?}: no backoff"
    );
    let s = pool.stats();
    assert_eq!(s.live, 1, "the pool keeps the worker it has: {s:?}");
    assert_eq!(s.spawned, 1);
    assert_eq!(s.spawn_failures as usize, r.refused.load(SeqCst), "{s:?}");
    assert_eq!(done.load(SeqCst), 0, "the only worker is still held");

    // The pool keeps serving with what it has: release the blocker and the backlog drains
    // on the one worker.
    latch.open();
    assert!(wait_until(PATIENCE, || done.load(SeqCst) == 20));
    assert_eq!(pool.stats().spawned, 1);

    // Threads are allowed again: the next backlog grows the pool.
    r.open.store(true, SeqCst);
    let latch = Latch::new();
    let _open2 = OpenOnDrop(latch.clone());
    for _ in 0..4 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
    }
    assert!(
        wait_until(PATIENCE, || pool.stats().busy == 4),
        "{:?}",
        pool.stats()
    );
    latch.open();
    pool.shutdown();
    let s = pool.stats();
    assert_eq!(s.completed, 25);
    assert!(s.spawned >= 4, "{s:?}");
}

#[test]
fn with_every_thread_refused_shutdown_reports_the_queue_and_shutdown_now_hands_it_back() {
    let r = Refuser::new();
    let pool = Pool::builder()
        .max_workers(4)
        .spawn_hook(r.hook(0))
        .build()
        .unwrap();
    let _allow = AllowOnDrop(Arc::clone(&r.open));
    let ran = counter();
    for _ in 0..3 {
        let n = Arc::clone(&ran);
        pool.execute(move || {
            n.fetch_add(1, SeqCst);
        })
        .unwrap();
    }
    assert!(wait_until(PATIENCE, || r.refused.load(SeqCst) >= 1));
    assert_eq!(pool.stats().live, 0);
    // Nobody can run the queue: a bounded shutdown says so instead of hanging...
    let t0 = Instant::now();
    let e = pool
        .shutdown_timeout(Duration::from_millis(300))
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!((e.running, e.queued, e.workers), (0, 3, 0), "{e}");
    assert!(e.to_string().contains("3 queued"), "{e}");
    // ... and shutdown_now hands every queued task back.
    let jobs = pool.shutdown_now();
    assert_eq!(jobs.len(), 3);
    jobs.into_iter().for_each(|j| j.run());
    assert_eq!(ran.load(SeqCst), 3);
    let s = pool.stats();
    assert_eq!((s.submitted, s.completed, s.returned), (3, 0, 3));
    assert!(s.spawn_failures >= 1);
}

#[test]
fn panicking_hooks_on_an_autoscaled_pool_are_counted_through_growth_and_shrink() {
    let handler_calls = counter();
    let h = Arc::clone(&handler_calls);
    let pool = Pool::builder()
        .autoscale(fast(1, 6))
        .panic_handler(move |_| {
            h.fetch_add(1, SeqCst);
            panic!("handler panicked");
        })
        .on_thread_start(|| panic!("start hook panicked"))
        .on_thread_stop(|| panic!("stop hook panicked"))
        .build()
        .unwrap();
    // Grow: six blockers need six workers.
    let latch = Latch::new();
    let _open = OpenOnDrop(latch.clone());
    for _ in 0..6 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
    }
    assert!(
        wait_until(PATIENCE, || pool.stats().busy == 6),
        "{:?}",
        pool.stats()
    );
    for _ in 0..10 {
        pool.execute(|| panic!("task")).unwrap();
    }
    latch.open();
    assert!(wait_until(PATIENCE, || pool.stats().completed == 16));
    // Shrink: idle workers retire, each running its (panicking) stop hook.
    assert!(
        wait_until(PATIENCE, || pool.stats().live <= 1),
        "{:?}",
        pool.stats()
    );
    let s = pool.stats();
    assert!(s.retired >= 5, "{s:?}");
    // The pool still serves, on workers whose start hook panicked.
    assert_eq!(pool.spawn(|| 7).unwrap().join().unwrap(), 7);
    pool.shutdown();
    let s = pool.stats();
    assert_eq!(s.panicked, 10);
    assert_eq!(handler_calls.load(SeqCst), 10);
    // Every thread ran both hooks (all panicked), plus ten panicking handler calls.
    assert_eq!(s.hook_panics, 2 * s.spawned + 10, "{s:?}");
}

#[test]
fn blocked_tasks_grow_the_pool_to_max_and_shutdown_timeout_reports_them() {
    let pool = Pool::builder().autoscale(fast(1, 5)).build().unwrap();
    let latch = Latch::new();
    let _open = OpenOnDrop(latch.clone());
    let peak = counter();
    // More blockers than max: five run, the rest stay queued. Nothing ever completes, so
    // the model has no service time to size with. Without a model the burst queue is the
    // target itself (a backlog as deep as the pool), so on-demand growth and the guards
    // (saturation, starvation: `tests/scaler.rs` drives those on their own) both push the
    // pool up; whichever acts, it must reach max and stop there.
    for _ in 0..8 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
    }
    assert!(
        wait_until(PATIENCE, || {
            let s = pool.stats();
            peak.fetch_max(s.live, SeqCst);
            s.busy == 5
        }),
        "{:?}",
        pool.stats()
    );
    // At max, with work queued and nothing dequeued, the bound holds however long it lasts.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(300) {
        peak.fetch_max(pool.stats().live, SeqCst);
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = pool.stats();
    assert_eq!((s.live, s.busy, s.queued), (5, 5, 3), "{s:?}");
    assert_eq!(peak.load(SeqCst), 5, "never above max");

    let t0 = Instant::now();
    let e = pool
        .shutdown_timeout(Duration::from_millis(200))
        .unwrap_err();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "shutdown_timeout took {took:?}"
    );
    assert_eq!((e.running, e.queued, e.workers), (5, 3, 5), "{e}");
    assert!(
        e.to_string()
            .contains("5 task(s) still running and 3 queued"),
        "{e}"
    );
    assert!(pool.is_shutdown());
    // The workers finish in the background once released, and then the queue.
    latch.open();
    assert!(
        wait_until(PATIENCE, || pool.stats().live == 0),
        "{:?}",
        pool.stats()
    );
    assert_eq!(pool.stats().completed, 8);
    pool.shutdown();
}

#[test]
fn every_worker_submitting_to_its_own_full_pool_completes_the_documented_way() {
    let pool = Pool::builder()
        .autoscale(fast(2, 2))
        .queue_capacity(1)
        .build()
        .unwrap();
    let (inline, queued, timed_out) = (counter(), counter(), counter());
    let start = Arc::new(std::sync::Barrier::new(2));
    let parents: Vec<_> = (0..2)
        .map(|_| {
            let (p, i, q, t, b) = (
                pool.clone(),
                Arc::clone(&inline),
                Arc::clone(&queued),
                Arc::clone(&timed_out),
                Arc::clone(&start),
            );
            pool.spawn(move || {
                // Both workers are here at once, so nobody drains the one-slot queue while
                // they submit: a blocking `execute` would wait forever.
                b.wait();
                for _ in 0..20 {
                    let q2 = Arc::clone(&q);
                    let job = move || {
                        q2.fetch_add(1, SeqCst);
                    };
                    match p.try_execute(job) {
                        Ok(()) => {}
                        Err(TrySubmitError::Overloaded(job)) => {
                            job();
                            i.fetch_add(1, SeqCst);
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                match p.execute_timeout(|| (), Duration::from_millis(5)) {
                    Ok(()) => {}
                    Err(SubmitTimeoutError::Timeout(job)) => {
                        job();
                        t.fetch_add(1, SeqCst);
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            })
            .unwrap()
        })
        .collect();
    for h in parents {
        h.join_timeout(PATIENCE)
            .expect("a parent task finished")
            .unwrap();
    }
    pool.shutdown();
    // Each parent's execute_timeout job either queued (and ran) or timed out and ran inline.
    assert_eq!(queued.load(SeqCst), 40, "every child ran, inline or queued");
    assert!(
        inline.load(SeqCst) >= 19,
        "while both workers submit, nobody drains the queue: {} ran inline",
        inline.load(SeqCst)
    );
    let s = pool.stats();
    assert_eq!(
        s.rejected_overloaded as usize,
        inline.load(SeqCst) + timed_out.load(SeqCst)
    );
    assert_eq!(
        s.completed as usize,
        2 + 40 - inline.load(SeqCst) + 2 - timed_out.load(SeqCst)
    );
}

/// Starts and stops counted by thread hooks, to see threads end without reading `stats()`
/// of a pool that is gone.
fn hooked(b: elastic_pool::Builder, starts: &Arc<AtomicUsize>, stops: &Arc<AtomicUsize>) -> Pool {
    let (a, z) = (Arc::clone(starts), Arc::clone(stops));
    b.on_thread_start(move || {
        a.fetch_add(1, SeqCst);
    })
    .on_thread_stop(move || {
        z.fetch_add(1, SeqCst);
    })
    .build()
    .unwrap()
}

#[test]
fn a_task_can_drop_the_last_handle_of_its_own_autoscaled_pool() {
    let (starts, stops, done) = (counter(), counter(), counter());
    // A private control thread: dropping the last handle stops it, from a worker.
    let pool = hooked(
        Pool::builder().autoscale(fast(2, 4)).prestart(true),
        &starts,
        &stops,
    );
    assert!(wait_until(PATIENCE, || starts.load(SeqCst) == 2));
    let queued = counter();
    let latch = Latch::new();
    let _open = OpenOnDrop(latch.clone());
    let (p, d, l) = (pool.clone(), Arc::clone(&done), latch.clone());
    pool.execute(move || {
        l.wait();
        drop(p);
        d.fetch_add(1, SeqCst);
    })
    .unwrap();
    // Work queued behind it still runs: dropping the pool is a graceful shutdown.
    for _ in 0..10 {
        let q = Arc::clone(&queued);
        pool.execute(move || {
            q.fetch_add(1, SeqCst);
        })
        .unwrap();
    }
    drop(pool);
    latch.open();
    assert!(wait_until(PATIENCE, || done.load(SeqCst) == 1));
    assert!(wait_until(PATIENCE, || queued.load(SeqCst) == 10));
    // Every worker thread, including the one that dropped the pool, stops.
    assert!(
        wait_until(PATIENCE, || stops.load(SeqCst) == starts.load(SeqCst)),
        "{} started, {} stopped",
        starts.load(SeqCst),
        stops.load(SeqCst)
    );
}

#[test]
fn many_pools_share_one_controller_while_pools_are_dropped_under_load() {
    let ctl = Controller::new().unwrap();
    let (starts, stops) = (counter(), counter());
    let pools: Vec<Pool> = (0..6)
        .map(|_| {
            // A short queue: the loaders feel backpressure, so a graceful shutdown has
            // little left to drain.
            hooked(
                Pool::builder()
                    .controller(&ctl)
                    .autoscale(fast(1, 4))
                    .queue_capacity(16),
                &starts,
                &stops,
            )
        })
        .collect();
    assert_eq!(ctl.pools(), 6);
    let stop = Arc::new(AtomicBool::new(false));
    let ran = counter();
    // One load thread per pool, submitting until told to stop or the pool closes.
    let loaders: Vec<_> = pools
        .iter()
        .map(|p| {
            let (p, stop, ran) = (p.clone(), Arc::clone(&stop), Arc::clone(&ran));
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    let r = Arc::clone(&ran);
                    let job = move || {
                        std::thread::sleep(Duration::from_micros(200));
                        r.fetch_add(1, SeqCst);
                    };
                    if p.execute_timeout(job, Duration::from_millis(5)).is_err() && p.is_shutdown()
                    {
                        return;
                    }
                }
            })
        })
        .collect();
    assert!(wait_until(PATIENCE, || ran.load(SeqCst) >= 500));
    let mut pools = pools.into_iter();
    // Pool 0: shut down under load and dropped here; its loader, seeing it closed, drops
    // the last handle on its own thread.
    let p0 = pools.next().unwrap();
    p0.shutdown();
    drop(p0);
    // Pool 1: the last handle is dropped inside one of its own tasks.
    let p1 = pools.next().unwrap();
    let p1b = p1.clone();
    p1.execute(move || drop(p1b)).unwrap();
    p1.shutdown();
    drop(p1);
    // Pool 2: shut down abruptly from another thread while a task is running.
    let p2 = pools.next().unwrap();
    let latch = Latch::new();
    let _open = OpenOnDrop(latch.clone());
    let l = latch.clone();
    let _ = p2.execute(move || l.wait());
    let closer = {
        let p2 = p2.clone();
        std::thread::spawn(move || p2.shutdown_now())
    };
    assert!(wait_until(PATIENCE, || p2.is_shutdown()));
    latch.open();
    for j in closer.join().unwrap() {
        j.run();
    }
    drop(p2);
    // The three others keep serving and autoscaling on the same control thread.
    let rest: Vec<Pool> = pools.collect();
    let before = ran.load(SeqCst);
    assert!(wait_until(PATIENCE, || ran.load(SeqCst) >= before + 500));
    for p in &rest {
        assert_eq!(p.spawn(|| 5).unwrap().join().unwrap(), 5);
        assert!(p.tick_now().is_some());
    }
    stop.store(true, SeqCst);
    for l in loaders {
        l.join().unwrap();
    }
    // The loaders held the last clones of the dropped pools: now the controller serves 3.
    assert!(
        wait_until(PATIENCE, || ctl.pools() == 3),
        "{} pools attached",
        ctl.pools()
    );
    drop(rest);
    assert!(wait_until(PATIENCE, || ctl.pools() == 0));
    assert!(
        wait_until(PATIENCE, || stops.load(SeqCst) == starts.load(SeqCst)),
        "{} started, {} stopped",
        starts.load(SeqCst),
        stops.load(SeqCst)
    );
}

// ----- bug found by the soak: a batch cut short by shutdown ------------------------------------

/// `execute_batch` splits a batch into chunks of at most 256 and pushes them in order. When
/// shutdown refuses a chunk, `Shared::push_batch` hands back that chunk *and every chunk after
/// it*, but only the refused chunk went through `push`, which is where refusals are counted:
/// the chunks never attempted are handed back without being counted in `rejected` /
/// `rejected_shutdown` (nor in their key's `rejected`). The 30-minute soak saw it as "the pool
/// says 231660 rejected, the soak counted 231675". Fails until `push_batch` counts the tail.
#[test]
fn a_batch_cut_short_by_shutdown_counts_every_job_it_hands_back() {
    let pool = Pool::builder()
        .max_workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let latch = Latch::new();
    let _open = OpenOnDrop(latch.clone());
    let l = latch.clone();
    pool.execute(move || l.wait()).unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().busy == 1));
    // 1000 jobs on one worker: chunks of 256, 256, 256 and 232. The first fills the queue;
    // the second waits for room.
    let ran = counter();
    let submitter = {
        let (p, ran) = (pool.clone(), Arc::clone(&ran));
        std::thread::spawn(move || {
            let jobs: Vec<_> = (0..1000)
                .map(|_| {
                    let r = Arc::clone(&ran);
                    move || {
                        r.fetch_add(1, SeqCst);
                    }
                })
                .collect();
            p.execute_batch(jobs).map_err(|e| e.into_inner().len())
        })
    };
    assert!(wait_until(PATIENCE, || pool.stats().submitted == 1 + 256));
    // A graceful shutdown closes the gate and waits for the submitter stuck on a full queue.
    let closer = {
        let p = pool.clone();
        std::thread::spawn(move || p.shutdown())
    };
    assert!(wait_until(PATIENCE, || pool.is_shutdown()));
    // Room appears: the waiting chunk gets in, the next one finds the gate closed.
    latch.open();
    let back = submitter
        .join()
        .unwrap()
        .expect_err("the batch was cut short");
    closer.join().unwrap();
    let s = pool.stats();
    assert_eq!(s.submitted as usize + back, 1 + 1000, "{s:?}");
    assert_eq!(ran.load(SeqCst) as u64, s.submitted - 1);
    assert_eq!(
        s.rejected as usize, back,
        "{back} jobs handed back, {} counted as rejected ({s:?})",
        s.rejected
    );
    assert_eq!(s.rejected_shutdown, s.rejected);
}

// ----- bug found by the soak: idle workers parked at `min` outlive a lowered `min` -------------

/// A worker that parks while `live <= min` parks with no keep-alive deadline (workers at the
/// floor never wake for nothing). When `set_bounds` (or `set_policy`) later lowers `min`,
/// nothing wakes those workers to take a deadline: on a pool without an autoscaler they stay
/// forever, and with one they stay until the target falls below them. The soak saw idle
/// spells of up to 17.7 s before the threads fell back, with a 0.5 s keep-alive. Fails until
/// lowering `min` wakes (or re-arms) the parked workers above the new floor.
#[test]
fn lowering_min_lets_idle_workers_above_it_expire() {
    let pool = Pool::builder()
        .max_workers(8)
        .keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    pool.set_bounds(3, 8).unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().idle == 3));
    // Workers at the floor: no expiry.
    pool.set_bounds(0, 8).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || pool.stats().live == 0),
        "three idle workers outlived a 50 ms keep-alive after min fell to 0: {:?}",
        pool.stats()
    );
}

// ----- durations at the edge of `Instant` --------------------------------------------------
//
// `Instant::now() + d` panics when the sum does not fit (`Duration::MAX`, or a policy's
// `keep_alive_s = 1e19`, which `Policy::validate` accepts). These three failed when this
// suite was written (a caller-side panic, and an idle worker that died holding its live
// slot, so that the next task never ran and a graceful shutdown waited forever); the library
// now uses `checked_add` (a deadline that does not fit means no deadline).

#[test]
fn execute_timeout_with_duration_max_waits_without_a_deadline() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.execute_timeout(|| (), Duration::MAX)
    }));
    assert!(
        matches!(caught, Ok(Ok(()))),
        "execute_timeout(_, Duration::MAX) panicked instead of submitting"
    );
}

#[test]
fn shutdown_timeout_with_duration_max_is_a_plain_shutdown() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    pool.execute(|| ()).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.shutdown_timeout(Duration::MAX)
    }));
    assert!(
        matches!(caught, Ok(Ok(()))),
        "shutdown_timeout(Duration::MAX) panicked instead of shutting down"
    );
}

#[test]
fn a_huge_keep_alive_does_not_kill_idle_workers() {
    // Valid by `Policy::validate` (finite, not negative), and by the builder (not zero).
    let policy = Policy {
        keep_alive_s: 1e19,
        ..fast(0, 1)
    };
    policy.validate().unwrap();
    let pool = Pool::builder().autoscale(policy).build().unwrap();
    // One task: the worker goes idle above min (0), computes its keep-alive deadline, and
    // must park, not panic.
    assert_eq!(pool.spawn(|| 1).unwrap().join().unwrap(), 1);
    assert!(wait_until(PATIENCE, || pool.stats().idle == 1));
    // A dead worker stays on the idle stack and keeps its live slot: the next task is
    // handed to it and never runs, and a graceful shutdown (the pool's drop) would wait for
    // it forever. So on failure the pool is leaked, not dropped.
    match pool
        .spawn(|| 2)
        .unwrap()
        .join_timeout(Duration::from_secs(5))
    {
        Ok(v) => assert_eq!(v.unwrap(), 2),
        Err(_) => {
            let s = pool.stats();
            std::mem::forget(pool);
            panic!(
                "the idle worker died computing `Instant::now() + keep_alive` (1e19 s): the \
                 next task never ran ({s:?})"
            );
        }
    }
    assert!(pool.shutdown_timeout(Duration::from_secs(5)).is_ok());
}
