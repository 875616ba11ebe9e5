//! A control tick allocates nothing: a counting global allocator watches
//! `Pool::tick_now`, which runs exactly the control thread's tick on the calling thread.
//! Neither does retiring idle workers, nor reading every tenant key.
#![cfg(not(loom))]

use elastic_pool::policy::Policy;
use elastic_pool::Pool;
use std::time::Duration;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{allocs, discount};

#[test]
fn a_control_tick_allocates_nothing() {
    let pool = Pool::builder()
        .autoscale(Policy {
            min_workers: 4,
            max_workers: 64,
            tick_ms: 60_000.0, // keep the control thread's own ticks out of the way
            ..Policy::default()
        })
        .prestart(true)
        .build()
        .unwrap();
    for _ in 0..2_000 {
        pool.execute(|| std::hint::black_box(())).unwrap();
    }
    assert!(pool.spawn(|| ()).unwrap().join().is_ok());
    // Warm up: the first tick opens /proc/self/stat, and the decision ring may rotate.
    for _ in 0..300 {
        pool.tick_now();
    }
    let b = allocs();
    drop(std::hint::black_box(Box::new(1u64)));
    assert!(allocs() > b, "the allocator counts this thread");
    let before = allocs();
    for round in 0..200 {
        if round % 50 == 0 {
            // Keep signals moving between ticks. The submits are not what is measured, so
            // whatever they allocate is taken off this thread's count (a small closure is
            // stored inline in its job, but a blocking submit may register a waiter).
            let b = allocs();
            for i in 0..100u64 {
                pool.execute(move || {
                    std::hint::black_box(i);
                })
                .unwrap();
            }
            let submit_allocs = allocs() - b;
            discount(submit_allocs);
            std::thread::sleep(Duration::from_millis(1));
        }
        let d = pool.tick_now().unwrap();
        std::hint::black_box(d);
    }
    assert_eq!(allocs() - before, 0, "control ticks allocated");
}

/// Polls `cond` until it holds, failing after a generous deadline.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn retiring_idle_workers_allocates_nothing() {
    // A tick that trims a surplus retires the coldest parked workers; so does lowering the
    // target by hand, through the same `Sleepers` call. Twenty idle workers down to two is
    // more than one of its fixed-size chunks.
    let pool = Pool::builder()
        .min_workers(20)
        .max_workers(64)
        .prestart(true)
        .build()
        .unwrap();
    wait_until("20 parked workers", || pool.stats().idle == 20);
    pool.set_bounds(1, 64).unwrap();
    // Lowering `min` wakes every parked worker once, to park again with a keep-alive.
    wait_until("20 parked again", || {
        let s = pool.stats();
        s.idle == 20 && s.live == 20
    });
    let before = allocs();
    assert_eq!(pool.set_target(2), 2);
    assert_eq!(allocs() - before, 0, "retiring 18 workers allocated");
    wait_until("18 retired", || pool.stats().live == 2);
    assert_eq!(pool.stats().retired, 18);
}

#[test]
fn reading_every_key_allocates_nothing() {
    // Per-tenant counters live in a slice: reading every key (what an exporter or a tick of
    // the caller's does) walks it and touches no map; the map is consulted only when a key
    // is registered.
    let pool = Pool::builder()
        .max_workers(2)
        .wait_sampling(1)
        .max_keys(16)
        .build()
        .unwrap();
    let keys: Vec<_> = (0..16)
        .map(|i| pool.key(&format!("tenant-{i}")).unwrap())
        .collect();
    for (i, k) in keys.iter().enumerate() {
        for _ in 0..=i {
            pool.execute_keyed(*k, || ()).unwrap();
        }
    }
    wait_until("136 keyed tasks", || pool.stats().completed == 136);
    let mut wait = elastic_pool::histogram::Snapshot::new();
    let (mut seen, mut submitted, mut waits) = (0, 0, 0);
    let before = allocs();
    pool.for_each_key(|k, h| {
        seen += 1;
        submitted += k.submitted;
        h.snapshot_into(&mut wait);
        waits += wait.count();
    });
    assert_eq!(allocs() - before, 0, "reading 16 keys allocated");
    assert_eq!((seen, submitted, waits), (16, 136, 136));
}
