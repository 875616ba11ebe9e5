//! Offloading blocking work from async code: awaiting a `TaskHandle`, and submitting through
//! `AsyncPool` while the queue is full, never block the runtime's thread; waiting submits keep
//! their order, a dropped one takes its job with it, and shutdown hands the job back.
#![cfg(not(loom))]

mod common;
use common::{wait_until, Latch, PATIENCE};
use elastic_pool::async_submit::AsyncPool;
use elastic_pool::{Pool, SubmitError, TrySubmitError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// A pool of one worker, held on a latch, with its one queue slot taken: full.
fn full_pool() -> (Pool, Latch) {
    let pool = Pool::builder()
        .max_workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let latch = Latch::new();
    let started = Arc::new(AtomicBool::new(false));
    let (l, s) = (latch.clone(), Arc::clone(&started));
    pool.execute(move || {
        s.store(true, Release);
        l.wait();
    })
    .unwrap();
    assert!(wait_until(PATIENCE, || started.load(Acquire)));
    pool.try_execute(|| ()).unwrap();
    assert!(matches!(
        pool.try_execute(|| ()),
        Err(TrySubmitError::Overloaded(_))
    ));
    (pool, latch)
}

/// A task on the runtime that counts its own wake-ups: it advances only while the runtime's
/// thread is free.
fn ticker(ticks: &Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let t = Arc::clone(ticks);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            t.fetch_add(1, Relaxed);
        }
    })
}

/// Polls `fut` alongside the runtime until the ticker has advanced `n` times, asserting
/// that `fut` stays pending throughout.
async fn stays_pending_while_ticking<F>(fut: &mut F, ticks: &AtomicU64, n: u64)
where
    F: std::future::Future + Unpin,
    F::Output: std::fmt::Debug,
{
    let from = ticks.load(Relaxed);
    let give_up = tokio::time::Instant::now() + PATIENCE;
    while ticks.load(Relaxed) < from + n {
        tokio::select! {
            biased;
            out = &mut *fut => panic!("finished while it should wait: {out:?}"),
            _ = tokio::time::sleep(Duration::from_millis(2)) => {}
        }
        assert!(tokio::time::Instant::now() < give_up, "the runtime stalled");
    }
}

#[test]
fn a_submit_waiting_for_room_does_not_block_the_runtime_thread() {
    let (pool, latch) = full_pool();
    let offload = AsyncPool::new(pool.clone()).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&ran);
    current_thread().block_on(async {
        let ticks = Arc::new(AtomicU64::new(0));
        let tick = ticker(&ticks);
        let mut submit = offload.execute(move || r.store(true, Release));
        // One thread runs both: the ticker advancing while the submit waits proves that the
        // wait never blocked it.
        stays_pending_while_ticking(&mut submit, &ticks, 20).await;
        assert_eq!(offload.waiting(), 1);
        assert_eq!(pool.stats().queued, 1, "the bound held");
        latch.open();
        tokio::time::timeout(PATIENCE, submit)
            .await
            .expect("the submit never completed")
            .unwrap();
        tick.abort();
    });
    assert!(wait_until(PATIENCE, || ran.load(Acquire)));
    assert_eq!(offload.waiting(), 0);
}

#[test]
fn awaiting_a_task_handle_does_not_block_the_runtime_thread() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let offload = AsyncPool::new(pool.clone()).unwrap();
    let latch = Latch::new();
    let l = latch.clone();
    current_thread().block_on(async {
        let ticks = Arc::new(AtomicU64::new(0));
        let tick = ticker(&ticks);
        let mut handle = offload
            .spawn(move || {
                l.wait(); // blocking work, on a pool worker
                6 * 7
            })
            .await
            .unwrap();
        stays_pending_while_ticking(&mut handle, &ticks, 20).await;
        latch.open();
        let v = tokio::time::timeout(PATIENCE, handle)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, 42);
        tick.abort();
    });
}

#[test]
fn waiting_submits_keep_their_order() {
    let (pool, latch) = full_pool();
    let offload = AsyncPool::new(pool.clone()).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    current_thread().block_on(async {
        let mut waiting = Vec::new();
        for i in 0..20 {
            let o = Arc::clone(&order);
            let mut f = offload.execute(move || o.lock().unwrap().push(i));
            // Poll once: the submit finds the queue full and joins the waiting room.
            assert!(tokio::time::timeout(Duration::ZERO, &mut f).await.is_err());
            waiting.push(f);
        }
        assert_eq!(offload.waiting(), 20);
        latch.open();
        let done = tokio::time::timeout(PATIENCE, futures::future::join_all(waiting))
            .await
            .expect("the waiting submits never completed");
        assert!(done.iter().all(Result::is_ok));
    });
    pool.shutdown();
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
}

#[test]
fn dropping_a_waiting_submit_drops_its_job_unrun() {
    let (pool, latch) = full_pool();
    let offload = AsyncPool::new(pool.clone()).unwrap();
    let (a_ran, b_ran) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    current_thread().block_on(async {
        let (a, b) = (Arc::clone(&a_ran), Arc::clone(&b_ran));
        let mut first = offload.execute(move || a.store(true, Release));
        let mut second = offload.execute(move || b.store(true, Release));
        assert!(tokio::time::timeout(Duration::ZERO, &mut first)
            .await
            .is_err());
        assert!(tokio::time::timeout(Duration::ZERO, &mut second)
            .await
            .is_err());
        drop(second);
        latch.open();
        tokio::time::timeout(PATIENCE, first)
            .await
            .unwrap()
            .unwrap();
    });
    pool.shutdown(); // runs everything that was accepted
    assert!(a_ran.load(Acquire));
    assert!(!b_ran.load(Acquire), "a dropped submit's job ran");
    assert!(wait_until(PATIENCE, || offload.waiting() == 0));
}

#[test]
fn after_shutdown_the_job_comes_back() {
    let pool = Pool::builder().build().unwrap();
    let offload = AsyncPool::new(pool.clone()).unwrap();
    pool.shutdown();
    let out = futures::executor::block_on(offload.spawn(|| 7));
    match out {
        Err(SubmitError::ShuttingDown(f)) => assert_eq!(f(), 7),
        Ok(_) => panic!("accepted after shutdown"),
    }
}
