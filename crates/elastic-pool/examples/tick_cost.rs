//! Times one control tick (`Pool::tick_now`) on an idle and on a busy autoscaled pool.
//!
//! `cargo run --release -p elastic-pool --example tick_cost -- [workers]`

use elastic_pool::policy::Policy;
use elastic_pool::Pool;
use std::time::{Duration, Instant};

fn median_tick(pool: &Pool, n: usize) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(pool.tick_now());
            t.elapsed()
        })
        .collect();
    v.sort();
    v[n / 2]
}

fn main() {
    let workers: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let pool = Pool::builder()
        .autoscale(Policy {
            min_workers: workers,
            max_workers: workers * 2,
            tick_ms: 60_000.0,
            ..Policy::default()
        })
        .prestart(true)
        .build()
        .expect("valid policy");
    while pool.stats().idle < workers {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Put samples into every shard once.
    for _ in 0..workers * 50 {
        pool.execute(|| std::thread::sleep(Duration::from_micros(50)))
            .unwrap();
    }
    while pool.stats().completed < (workers * 50) as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "idle pool, {workers} workers: median tick {:?}",
        median_tick(&pool, 2001)
    );
    // A tick after every worker shard recorded new samples: the full merge path.
    pool.set_wait_sampling(1);
    let mut v = Vec::new();
    for round in 0..301u64 {
        let target = pool.stats().completed + workers as u64 * 2;
        for _ in 0..workers * 2 {
            pool.execute(|| std::thread::sleep(Duration::from_micros(20)))
                .unwrap();
        }
        while pool.stats().completed < target {
            std::thread::yield_now();
        }
        let t = Instant::now();
        std::hint::black_box(pool.tick_now());
        v.push(t.elapsed());
        std::hint::black_box(round);
    }
    v.sort();
    println!(
        "after fresh samples, {workers} workers: median tick {:?}",
        v[v.len() / 2]
    );
}
