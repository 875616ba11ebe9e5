//! A control tick allocates nothing: a counting global allocator watches
//! `Pool::tick_now`, which runs exactly the control thread's tick on the calling thread.
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
