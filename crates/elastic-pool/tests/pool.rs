//! Behaviour of the pool core: submit variants, handles, panics, bounds, resize, shutdown.
#![cfg(not(loom))]

mod common;
use common::{hold_workers, wait_until, Latch, PATIENCE};
use elastic_pool::{JoinError, Pool, SubmitError, SubmitTimeoutError, TrySubmitError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[test]
fn execute_runs_every_task_once() {
    let pool = Pool::builder().max_workers(4).build().unwrap();
    let n = counter();
    for _ in 0..1000 {
        let n = Arc::clone(&n);
        pool.execute(move || {
            n.fetch_add(1, SeqCst);
        })
        .unwrap();
    }
    pool.shutdown();
    assert_eq!(n.load(SeqCst), 1000);
    let s = pool.stats();
    assert_eq!(s.submitted, 1000);
    assert_eq!(s.completed, 1000);
    assert_eq!(s.queued, 0);
    assert_eq!(s.live, 0, "shutdown joined every worker");
}

#[test]
fn build_errors_name_the_field() {
    let e = Pool::builder().max_workers(0).build().unwrap_err();
    assert_eq!(e.field, "max_workers");
    let e = Pool::builder()
        .min_workers(5)
        .max_workers(4)
        .build()
        .unwrap_err();
    assert_eq!(e.field, "min_workers");
    assert!(e.to_string().contains("min_workers"), "{e}");
    let e = Pool::builder().queue_capacity(0).build().unwrap_err();
    assert_eq!(e.field, "queue_capacity");
    let e = Pool::builder()
        .keep_alive(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field, "keep_alive");
    let e = Pool::builder().stack_size(100).build().unwrap_err();
    assert_eq!(e.field, "stack_size");
    let e = Pool::builder().thread_name("a\0b").build().unwrap_err();
    assert_eq!(e.field, "thread_name");
    let e = Pool::builder().wait_sampling(0).build().unwrap_err();
    assert_eq!(e.field, "wait_sampling");
    let pool = Pool::builder().build().unwrap();
    assert_eq!(pool.set_bounds(3, 2).unwrap_err().field, "min_workers");
    assert_eq!(pool.set_bounds(0, 0).unwrap_err().field, "max_workers");
}

/// A pool with one worker held inside a task and a queue of `cap`, filled up.
fn saturated(cap: usize) -> (Pool, Latch) {
    let pool = Pool::builder()
        .max_workers(1)
        .queue_capacity(cap)
        .build()
        .unwrap();
    let latch = Latch::new();
    hold_workers(&pool, 1, &latch);
    for _ in 0..cap {
        pool.try_execute(|| ()).unwrap();
    }
    (pool, latch)
}

#[test]
fn overload_hands_the_job_back() {
    let (pool, latch) = saturated(2);
    let marker = Arc::new(());
    let m = Arc::clone(&marker);
    let err = pool.try_execute(move || drop(m)).unwrap_err();
    assert!(matches!(err, TrySubmitError::Overloaded(_)), "{err:?}");
    // The very closure comes back: it still owns its capture, and it can be run.
    assert_eq!(Arc::strong_count(&marker), 2);
    let job = err.into_inner();
    job();
    assert_eq!(Arc::strong_count(&marker), 1);

    let err = pool
        .execute_timeout(|| (), Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(err, SubmitTimeoutError::Timeout(_)));
    let err = pool.try_spawn(|| 5).unwrap_err();
    assert_eq!((err.into_inner())(), 5);
    assert_eq!(pool.stats().rejected_overloaded, 3);
    latch.open();
    pool.shutdown();
    assert_eq!(pool.stats().completed, 3);
}

#[test]
fn after_shutdown_every_submit_hands_the_job_back() {
    let pool = Pool::builder().build().unwrap();
    pool.shutdown();
    assert!(pool.is_shutdown());
    assert!(matches!(
        pool.execute(|| ()),
        Err(SubmitError::ShuttingDown(_))
    ));
    assert!(matches!(
        pool.try_execute(|| ()),
        Err(TrySubmitError::ShuttingDown(_))
    ));
    assert!(matches!(
        pool.execute_timeout(|| (), Duration::from_secs(1)),
        Err(SubmitTimeoutError::ShuttingDown(_))
    ));
    let f = pool.spawn(|| 7).unwrap_err().into_inner();
    assert_eq!(f(), 7);
    let out = Arc::new(Mutex::new(Vec::new()));
    let jobs = (0..5).map(|i| {
        let o = Arc::clone(&out);
        move || o.lock().unwrap().push(i)
    });
    let back = pool.execute_batch(jobs).unwrap_err().into_inner();
    back.into_iter().for_each(|f| f());
    assert_eq!(*out.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    assert_eq!(pool.stats().rejected_shutdown, 9);
    // A second shutdown is a no-op.
    pool.shutdown();
    assert!(pool.shutdown_timeout(Duration::from_millis(1)).is_ok());
    assert!(pool.shutdown_now().is_empty());
}

#[test]
fn handles_join_and_report_panics() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let h = pool.spawn(|| 40 + 2).unwrap();
    assert_eq!(h.join().unwrap(), 42);
    let h = pool.spawn(|| -> u32 { panic!("boom") }).unwrap();
    match h.join() {
        Err(JoinError::Panicked(p)) => assert_eq!(*p.downcast::<&str>().unwrap(), "boom"),
        other => panic!("expected a panic, got {other:?}"),
    }
    let latch = Latch::new();
    let l = latch.clone();
    let h = pool.spawn(move || l.wait()).unwrap();
    assert!(!h.is_finished());
    latch.open();
    assert!(wait_until(PATIENCE, || h.is_finished()));
    h.join().unwrap();
    // Counters move just after a task returns, so a joined handle can be seen first.
    assert!(wait_until(PATIENCE, || pool.stats().completed == 3));
    assert_eq!(pool.stats().panicked, 1);
}

#[test]
fn handles_are_futures_under_futures_executor() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let hs: Vec<_> = (0..50u64)
        .map(|i| pool.spawn(move || i * i).unwrap())
        .collect();
    let total = futures::executor::block_on(async {
        let mut t = 0;
        for h in hs {
            t += h.await.unwrap();
        }
        t
    });
    assert_eq!(total, (0..50u64).map(|i| i * i).sum::<u64>());
}

#[test]
fn handles_are_futures_under_tokio() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let v = rt.block_on(async {
        let a = pool.spawn(|| 1).unwrap();
        let b = pool.spawn(|| -> i32 { panic!("in tokio") }).unwrap();
        (a.await.unwrap(), b.await.is_err())
    });
    assert_eq!(v, (1, true));
}

#[test]
fn a_handle_of_a_task_that_never_ran_is_cancelled() {
    // A full queue behind a busy worker: shutdown_now hands back all four queued tasks.
    let (pool, latch) = saturated(4);
    let returned = {
        let p = pool.clone();
        let h = std::thread::spawn(move || p.shutdown_now());
        assert!(wait_until(PATIENCE, || pool.is_shutdown()));
        latch.open();
        h.join().unwrap()
    };
    assert_eq!(returned.len(), 4);
    let pool = Pool::builder()
        .max_workers(1)
        .queue_capacity(4)
        .build()
        .unwrap();
    let latch = Latch::new();
    let l = latch.clone();
    let blocker = pool.spawn(move || l.wait()).unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().busy == 1));
    let victim = pool.spawn(|| 99).unwrap();
    let p = pool.clone();
    let shut = std::thread::spawn(move || p.shutdown_now());
    assert!(wait_until(PATIENCE, || pool.is_shutdown()));
    latch.open();
    let jobs = shut.join().unwrap();
    assert_eq!(jobs.len(), 1);
    drop(jobs);
    assert!(matches!(victim.join(), Err(JoinError::Cancelled)));
    blocker.join().unwrap();
}

#[test]
fn panics_are_isolated_counted_and_handled() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = Arc::clone(&seen);
    let pool = Pool::builder()
        .max_workers(1)
        .panic_handler(move |p| {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .unwrap_or_default();
            s.lock().unwrap().push(msg);
        })
        .build()
        .unwrap();
    let ran = counter();
    for i in 0..20 {
        let r = Arc::clone(&ran);
        pool.execute(move || {
            r.fetch_add(1, SeqCst);
            if i % 2 == 0 {
                panic!("task panicked");
            }
        })
        .unwrap();
    }
    pool.shutdown();
    let st = pool.stats();
    assert_eq!(ran.load(SeqCst), 20);
    assert_eq!(st.completed, 20);
    assert_eq!(st.panicked, 10);
    assert_eq!(st.spawned, 1, "the single worker survived every panic");
    assert_eq!(seen.lock().unwrap().len(), 10);
    assert!(seen.lock().unwrap().iter().all(|m| m == "task panicked"));
}

#[test]
fn a_panicking_panic_handler_and_hooks_are_contained() {
    let pool = Pool::builder()
        .max_workers(1)
        .panic_handler(|_| panic!("handler panicked"))
        .on_thread_start(|| panic!("start hook panicked"))
        .on_thread_stop(|| panic!("stop hook panicked"))
        .build()
        .unwrap();
    pool.execute(|| panic!("task")).unwrap();
    let h = pool.spawn(|| 3).unwrap();
    assert_eq!(h.join().unwrap(), 3);
    pool.shutdown();
    let s = pool.stats();
    assert_eq!(s.completed, 2);
    assert_eq!(s.panicked, 1);
    assert_eq!(s.hook_panics, 3, "start hook, panic handler, stop hook");
}

#[test]
fn live_workers_stay_within_bounds() {
    let pool = Pool::builder()
        .min_workers(2)
        .max_workers(5)
        .prestart(true)
        .build()
        .unwrap();
    assert_eq!(pool.stats().live, 2, "prestart starts min workers at build");
    let latch = Latch::new();
    let peak = counter();
    for _ in 0..40 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
        let live = pool.stats().live;
        peak.fetch_max(live, SeqCst);
        assert!((2..=5).contains(&live), "live {live}");
    }
    assert!(wait_until(PATIENCE, || pool.stats().live == 5));
    latch.open();
    assert!(wait_until(PATIENCE, || pool.stats().completed == 40));
    // `live` is reserved before a thread starts and `spawned` counted once the OS returns it,
    // so the last spawn may be counted a moment after `live` reached 5.
    assert!(wait_until(PATIENCE, || pool.stats().spawned >= 5));
    let s = pool.stats();
    assert!(s.live >= 2 && s.live <= 5);
    assert!(peak.load(SeqCst) <= 5);
    assert_eq!(s.spawned, 5, "grew to max once and never past it");
}

#[test]
fn idle_workers_retire_after_keep_alive_down_to_min() {
    let pool = Pool::builder()
        .min_workers(1)
        .max_workers(4)
        .keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    let latch = Latch::new();
    for _ in 0..4 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().live == 4));
    latch.open();
    assert!(wait_until(PATIENCE, || pool.stats().live == 1));
    let s = pool.stats();
    assert_eq!(s.retired, 3);
    assert_eq!(s.spawned - s.retired, s.live as u64);
}

#[test]
fn lowering_the_target_retires_idle_workers_without_waiting_for_keep_alive() {
    let pool = Pool::builder()
        .max_workers(6)
        .keep_alive(Duration::from_secs(3600))
        .build()
        .unwrap();
    let latch = Latch::new();
    for _ in 0..6 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().live == 6));
    // Busy workers retire after their current task.
    assert_eq!(pool.set_target(4), 4);
    latch.open();
    assert!(wait_until(PATIENCE, || pool.stats().live == 4));
    // Idle workers retire at once.
    assert!(wait_until(PATIENCE, || pool.stats().idle == 4));
    pool.set_target(1);
    assert!(wait_until(PATIENCE, || pool.stats().live == 1));
    assert_eq!(pool.stats().retired, 5);
    // The target is clamped into [max(min, 1), max].
    assert_eq!(pool.set_target(0), 1);
    assert_eq!(pool.set_target(100), 6);
}

#[test]
fn raising_the_target_grows_a_queued_backlog() {
    let pool = Pool::builder().max_workers(8).build().unwrap();
    pool.set_target(1);
    let latch = Latch::new();
    for _ in 0..8 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().busy == 1));
    assert_eq!(pool.stats().live, 1);
    assert_eq!(pool.stats().queued, 7);
    // The backlog is already queued; growth comes from the control thread, not a submit.
    pool.set_target(8);
    assert!(wait_until(PATIENCE, || pool.stats().live == 8
        && pool.stats().queued == 0));
    latch.open();
    pool.shutdown();
    assert_eq!(pool.stats().completed, 8);
}

#[test]
fn set_bounds_raises_live_to_the_new_min() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    pool.set_bounds(3, 6).unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().live == 3));
    let s = pool.stats();
    assert_eq!((s.min, s.max), (3, 6));
}

#[test]
fn shutdown_now_returns_exactly_the_tasks_that_never_ran() {
    let pool = Pool::builder()
        .max_workers(2)
        .queue_capacity(1000)
        .build()
        .unwrap();
    let latch = Latch::new();
    let ran = Arc::new(Mutex::new(HashSet::new()));
    for i in 0..200u32 {
        let (l, r) = (latch.clone(), Arc::clone(&ran));
        pool.execute(move || {
            if i < 2 {
                l.wait();
            }
            assert!(r.lock().unwrap().insert(i), "task {i} ran twice");
        })
        .unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().busy == 2));
    let p = pool.clone();
    let shut = std::thread::spawn(move || p.shutdown_now());
    assert!(wait_until(PATIENCE, || pool.is_shutdown()));
    latch.open();
    let returned = shut.join().unwrap();
    let ran_now = ran.lock().unwrap().len();
    assert_eq!(
        ran_now + returned.len(),
        200,
        "ran {ran_now}, returned {}",
        returned.len()
    );
    // Running the returned jobs completes the set exactly: none had run before.
    for j in returned {
        j.run();
    }
    assert_eq!(ran.lock().unwrap().len(), 200);
    let s = pool.stats();
    assert_eq!(s.submitted, s.completed + s.returned);
}

#[test]
fn shutdown_timeout_reports_what_is_left_running() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    let latch = Latch::new();
    let l = latch.clone();
    pool.execute(move || l.wait()).unwrap();
    pool.execute(|| ()).unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().busy == 1));
    let err = pool
        .shutdown_timeout(Duration::from_millis(50))
        .unwrap_err();
    assert_eq!((err.running, err.queued), (1, 1));
    latch.open();
    pool.shutdown();
    assert_eq!(pool.stats().completed, 2);
}

#[test]
fn batches_run_every_job_once() {
    let pool = Pool::builder().max_workers(3).build().unwrap();
    let seen = Arc::new(Mutex::new(vec![0u8; 10_000]));
    let jobs = (0..10_000).map(|i| {
        let s = Arc::clone(&seen);
        move || s.lock().unwrap()[i] += 1
    });
    pool.execute_batch(jobs).unwrap();
    pool.execute_batch(std::iter::empty::<fn()>()).unwrap();
    pool.shutdown();
    assert!(seen.lock().unwrap().iter().all(|&c| c == 1));
    let s = pool.stats();
    assert_eq!((s.submitted, s.completed), (10_000, 10_000));
}

#[test]
fn typed_pool_runs_its_handler() {
    let sum = counter();
    let s = Arc::clone(&sum);
    let pool = Pool::builder()
        .max_workers(2)
        .queue_capacity(8)
        .build_typed(move |x: usize| {
            s.fetch_add(x, SeqCst);
        })
        .unwrap();
    for i in 0..100 {
        pool.execute(i).unwrap();
    }
    pool.execute_batch(100..1000).unwrap();
    pool.execute_timeout(1000, Duration::from_secs(5)).unwrap();
    pool.shutdown();
    assert_eq!(sum.load(SeqCst), (0..=1000).sum::<usize>());
    assert!(matches!(
        pool.try_execute(5),
        Err(TrySubmitError::ShuttingDown(5))
    ));
}

#[test]
fn refused_threads_are_counted_and_the_pool_keeps_serving() {
    let allowed = Arc::new(AtomicUsize::new(1));
    let a = Arc::clone(&allowed);
    let pool = Pool::builder()
        .max_workers(4)
        .spawn_hook(move || {
            if a.load(SeqCst) == 0 {
                return Err(std::io::Error::other("injected: no more threads"));
            }
            a.fetch_sub(1, SeqCst);
            Ok(())
        })
        .build()
        .unwrap();
    let n = counter();
    for _ in 0..50 {
        let n = Arc::clone(&n);
        pool.execute(move || {
            n.fetch_add(1, SeqCst);
            std::thread::sleep(Duration::from_millis(1));
        })
        .unwrap();
    }
    assert!(wait_until(PATIENCE, || n.load(SeqCst) == 50));
    let s = pool.stats();
    assert_eq!(s.spawned, 1, "only one thread was allowed");
    assert!(s.spawn_failures >= 1, "{s:?}");
    // Backoff: failures are spaced out, not retried in a hot loop.
    assert!(s.spawn_failures < 50, "{s:?}");
    allowed.store(10, SeqCst);
}

#[test]
fn a_task_can_drop_the_last_handle_of_its_own_pool() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let done = counter();
    let d = Arc::clone(&done);
    let p = pool.clone();
    drop(pool);
    // `p` is now the last handle; the task drops it on a worker thread.
    let p2 = p.clone();
    p.execute(move || {
        drop(p2);
        d.fetch_add(1, SeqCst);
    })
    .unwrap();
    drop(p);
    assert!(wait_until(PATIENCE, || done.load(SeqCst) == 1));
}

#[test]
fn a_task_submitting_to_its_own_full_pool_uses_try_execute() {
    let pool = Pool::builder()
        .max_workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let inline = counter();
    let (p, i) = (pool.clone(), Arc::clone(&inline));
    let h = pool
        .spawn(move || {
            // Fill the queue, then submit once more: the documented way out is to run the
            // job inline when the pool is overloaded, instead of blocking forever.
            p.try_execute(|| ()).unwrap();
            match p.try_execute(|| ()) {
                Err(TrySubmitError::Overloaded(job)) => {
                    job();
                    i.fetch_add(1, SeqCst);
                }
                other => panic!("expected Overloaded, got {other:?}"),
            }
            match p.execute_timeout(|| (), Duration::from_millis(10)) {
                Err(SubmitTimeoutError::Timeout(job)) => job(),
                other => panic!("expected Timeout, got {other:?}"),
            }
        })
        .unwrap();
    h.join().unwrap();
    assert_eq!(inline.load(SeqCst), 1);
    pool.shutdown();
}

#[test]
fn light_load_reuses_the_most_recently_idle_worker() {
    let pool = Pool::builder()
        .min_workers(4)
        .max_workers(4)
        .prestart(true)
        .build()
        .unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().idle == 4));
    let mut threads = HashSet::new();
    for _ in 0..20 {
        let id = pool
            .spawn(|| std::thread::current().id())
            .unwrap()
            .join()
            .unwrap();
        threads.insert(id);
        // Let the worker park again before the next task, as under a light load.
        assert!(wait_until(PATIENCE, || pool.stats().idle == 4));
    }
    assert_eq!(
        threads.len(),
        1,
        "LIFO wake-up keeps the surplus workers cold"
    );
}

#[test]
fn several_pools_share_one_controller_and_one_can_be_dropped() {
    let ctl = elastic_pool::Controller::new().unwrap();
    let a = Pool::builder()
        .controller(&ctl)
        .max_workers(2)
        .build()
        .unwrap();
    let b = Pool::builder()
        .controller(&ctl)
        .max_workers(2)
        .build()
        .unwrap();
    assert_eq!(ctl.pools(), 2);
    let h = a.spawn(|| 1).unwrap();
    drop(b);
    assert_eq!(h.join().unwrap(), 1);
    assert!(wait_until(PATIENCE, || ctl.pools() == 1));
    assert_eq!(a.spawn(|| 2).unwrap().join().unwrap(), 2);
}

#[test]
fn cpu_count_is_positive_and_stable() {
    let pool = Pool::builder().build().unwrap();
    assert!(pool.cpu_count() >= 1);
    assert_eq!(pool.cpu_count(), elastic_pool::clock::cpu_count());
}
