//! Wait sampling: 1 in N per thread and per pool, and the autoscaler's adaptive rate, which
//! samples every task when a window would otherwise hold too few waits.
//!
//! This binary builds fewer pools than the sampling countdown has slots (eight), so no two
//! of its pools share a countdown, whatever order the tests run in.
#![cfg(not(loom))]

mod common;
use common::{wait_until, PATIENCE};
use elastic_pool::policy::Policy;
use elastic_pool::Pool;

fn fixed(n: u32) -> Pool {
    Pool::builder()
        .min_workers(1)
        .max_workers(1)
        .wait_sampling(n)
        .build()
        .unwrap()
}

#[test]
fn a_thread_alternating_between_two_pools_samples_each_one_in_n() {
    // One countdown per thread for every pool would send all 1-in-8 samples to `a` here: the
    // submits alternate, and every eighth is always a's.
    let (a, b) = (fixed(8), fixed(8));
    for _ in 0..800 {
        a.execute(|| ()).unwrap();
        b.execute(|| ()).unwrap();
    }
    for p in [&a, &b] {
        assert!(wait_until(PATIENCE, || p.stats().completed == 800));
    }
    assert_eq!(a.stats().wait_samples, 100, "pool a: 1 in 8 of 800");
    assert_eq!(b.stats().wait_samples, 100, "pool b: 1 in 8 of 800");
    assert_eq!(a.stats().submitted, 800, "counts are exact, not sampled");
}

/// Submits `n` empty tasks and waits until they have all run.
fn run(pool: &Pool, n: u64) {
    let done = pool.stats().completed + n;
    for _ in 0..n {
        pool.execute(|| ()).unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().completed == done));
}

#[test]
fn the_autoscaler_samples_more_when_a_window_would_hold_too_few_waits() {
    let pool = Pool::builder()
        .autoscale(Policy {
            min_workers: 1,
            max_workers: 1,
            tick_ms: 60_000.0,
            wait_sample_every: 16,
            min_wait_samples: 20,
            ..Policy::default()
        })
        .prestart(true)
        .build()
        .unwrap();
    assert_eq!(pool.wait_sampling(), 16, "the policy's rate to begin with");
    // The control thread opens the first window at once and ticks 100 ms later (then not for
    // another minute). Wait for that tick, so that only `tick_now` below closes windows.
    assert!(wait_until(PATIENCE, || pool.demand_workers().is_some()));
    assert_eq!(pool.wait_sampling(), 1, "the first window was quiet");
    pool.set_wait_sampling(16);

    // N = clamp(arrivals in the window / min_wait_samples, 1, wait_sample_every).
    for (arrivals, want) in [(5, 1), (640, 16), (200, 10), (39, 1), (60, 3)] {
        run(&pool, arrivals);
        pool.tick_now().expect("an autoscaled pool ticks");
        assert_eq!(pool.wait_sampling(), want, "after a window of {arrivals}");
        assert_eq!(pool.metrics().wait_sampling, want);
    }

    // At N = 3 the next 30 tasks from this thread give exactly 10 samples; at N = 1 (after a
    // quiet window) every task is sampled.
    let before = pool.stats().wait_samples;
    run(&pool, 30);
    assert_eq!(pool.stats().wait_samples - before, 10);
    pool.tick_now().unwrap();
    assert_eq!(
        pool.wait_sampling(),
        1,
        "30 arrivals hold fewer than 20 × 2"
    );
    let before = pool.stats().wait_samples;
    run(&pool, 7);
    assert_eq!(pool.stats().wait_samples - before, 7);
}
