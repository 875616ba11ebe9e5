//! Times one control tick (`Pool::tick_now`) on an idle and on a busy autoscaled pool, and the
//! shard merge alone (`Pool::histograms`, the same walk over every shard's histograms).
//!
//! `cargo run --release -p elastic-pool --example tick_cost -- [workers]`

use elastic_pool::histogram::Snapshot;
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
            // Pinned at `workers`: a pool the ticks grow would time a different shard count
            // from run to run.
            max_workers: workers,
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
    // A tick after every worker shard recorded new samples: the full merge path. Every
    // other round times the merge alone instead (`Pool::histograms`), on shards just as fresh.
    pool.set_wait_sampling(1);
    let (mut ticks, mut merges) = (Vec::new(), Vec::new());
    let (mut wait, mut run) = (Box::new(Snapshot::new()), Box::new(Snapshot::new()));
    for round in 0..602u64 {
        let target = pool.stats().completed + workers as u64 * 2;
        for _ in 0..workers * 2 {
            pool.execute(|| std::thread::sleep(Duration::from_micros(20)))
                .unwrap();
        }
        while pool.stats().completed < target {
            std::thread::yield_now();
        }
        let t = Instant::now();
        if round % 2 == 0 {
            std::hint::black_box(pool.tick_now());
            ticks.push(t.elapsed());
        } else {
            pool.histograms(&mut wait, &mut run);
            merges.push(t.elapsed());
        }
    }
    ticks.sort();
    merges.sort();
    println!(
        "after fresh samples, {workers} workers: median tick {:?}",
        ticks[ticks.len() / 2]
    );
    println!(
        "after fresh samples, {workers} workers: median merge {:?}",
        merges[merges.len() / 2]
    );
    println!("live workers at the end: {}", pool.stats().live);
    let used = |s: &Snapshot| s.counts().iter().filter(|&&c| c != 0).count();
    println!(
        "buckets used (all shards): wait {}, run {}",
        used(&wait),
        used(&run)
    );
}
