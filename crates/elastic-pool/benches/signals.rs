//! Costs of the control signals: histogram record (1 and 2 threads; with the sample log a
//! worker also writes), quantile, and a whole control tick over 64 shards, both the full merge
//! (clear + merge, window delta, 4 quantiles, 3 EWMA updates) and the sample-log fold that
//! replaces it while no log is outrun.
//!
//! The tick reads shards that sit in this core's caches; in a running pool, shards that workers
//! wrote since the last tick are fetched from other cores' caches, which costs more.
//!
//! `cargo bench -p elastic-pool --bench signals` (about 20 s; add `-- --quick` for a rough pass).

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_utils::CachePadded;
use elastic_pool::ewma::{Ewma, PeakEwma};
use elastic_pool::histogram::{bucket_index, Histogram, Snapshot};
use elastic_pool::sample_log::SampleLog;

/// Lognormal-ish durations (median ~200 µs, spread over 5 decades), so records hit many buckets.
fn values(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
            (200e3 * (12.0 * (u - 0.5)).exp()) as u64
        })
        .collect()
}

const MASK: usize = 1023;

fn record(c: &mut Criterion) {
    let vals = values(MASK + 1, 0x5EED);
    let mut g = c.benchmark_group("record");

    let h = Histogram::new();
    let mut i = 0usize;
    g.bench_function("1_thread", |b| {
        b.iter(|| {
            h.record(black_box(vals[i & MASK]));
            i = i.wrapping_add(1);
        })
    });

    // What a worker writes per sampled wait: the histogram and its sample log (drained every
    // 64 records, as a tick would, so it never laps).
    let log = SampleLog::<{ elastic_pool::sample_log::CAPACITY }>::new();
    let h2 = Histogram::new();
    let mut i = 0usize;
    let mut cursor = 0u64;
    g.bench_function("1_thread_with_log", |b| {
        b.iter(|| {
            let v = black_box(vals[i & MASK]);
            log.push(0, h2.record_n_in_bucket(v, 1), 1);
            if i % 64 == 63 {
                let _ = log.read_new(&mut cursor, |_, _, _| ());
            }
            i = i.wrapping_add(1);
        })
    });

    // Two threads at once, each on its own shard (the pool's layout) or both on one shard
    // (for contrast). Time per iteration = time per record on each thread.
    let two_threads = |same_shard: bool| {
        let vals = &vals;
        move |iters: u64| -> Duration {
            let shards = [
                CachePadded::new(Histogram::new()),
                CachePadded::new(Histogram::new()),
            ];
            let start = Barrier::new(2);
            let elapsed: Vec<Duration> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..2)
                    .map(|t| {
                        let h = &shards[if same_shard { 0 } else { t }];
                        let start = &start;
                        s.spawn(move || {
                            start.wait();
                            let t0 = Instant::now();
                            for k in 0..iters as usize {
                                h.record(black_box(vals[(k + t * 512) & MASK]));
                            }
                            t0.elapsed()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            elapsed.into_iter().max().unwrap()
        }
    };
    g.bench_function("2_threads_own_shards", |b| {
        b.iter_custom(two_threads(false))
    });
    g.bench_function("2_threads_same_shard", |b| b.iter_custom(two_threads(true)));
    g.finish();
}

fn quantile(c: &mut Criterion) {
    let h = Histogram::new();
    for v in values(100_000, 0xC0FFEE) {
        h.record(v);
    }
    let mut s = Snapshot::new();
    h.snapshot_into(&mut s);
    c.bench_function("quantile_p99", |b| {
        b.iter(|| black_box(&s).quantile(black_box(0.99)))
    });
}

fn tick(c: &mut Criterion) {
    const SHARDS: usize = 64;
    let shards: Vec<CachePadded<Histogram>> = (0..SHARDS)
        .map(|_| CachePadded::new(Histogram::new()))
        .collect();
    let vals = values(4_096, 0xBEEF);
    // The previous tick saw half of each shard's records; the window holds the other half.
    let mut previous = Box::new(Snapshot::new());
    for (i, h) in shards.iter().enumerate() {
        for k in 0..500 {
            h.record(vals[(i * 61 + k) % vals.len()]);
        }
        previous.add_histogram(h);
        for k in 500..1_000 {
            h.record(vals[(i * 61 + k) % vals.len()]);
        }
    }
    let mut total = Box::new(Snapshot::new());
    let mut window = Box::new(Snapshot::new());
    let mut lambda = Ewma::new(Duration::from_secs(5));
    let mut service = Ewma::new(Duration::from_secs(10));
    let mut wait = PeakEwma::new(Duration::from_secs(5));
    let mut now = 0u64;

    // The recommended merge (one `add_histograms` call, eight shards per pass) and, for
    // contrast, one `add_histogram` per shard.
    for grouped in [true, false] {
        let name = if grouped {
            "tick_64_shards"
        } else {
            "tick_64_shards_one_by_one"
        };
        c.bench_function(name, |b| {
            b.iter(|| {
                total.clear();
                if grouped {
                    total.add_histograms(shards.iter().map(|h| &**h));
                } else {
                    for h in &shards {
                        total.add_histogram(h);
                    }
                }
                total.delta_into(&previous, &mut window);
                let mut acc = 0u64;
                for q in [0.5, 0.9, 0.99, 0.999] {
                    acc = acc.wrapping_add(window.quantile(q).unwrap_or(0));
                }
                now += 500_000_000;
                lambda.update(window.count() as f64 * 2.0, now);
                service.update(window.mean_ns().unwrap_or(0.0), now);
                wait.update(acc as f64, now);
                black_box((&window, &lambda, &service, &wait));
            })
        });
    }
}

/// The tick's usual path: fold the entries of 64 sample logs (four each: two sampled tasks'
/// waits and run times) into the window, then the same quantiles and EWMAs as `tick`. The logs
/// are refilled outside the timed region.
fn tick_from_logs(c: &mut Criterion) {
    const SHARDS: usize = 64;
    let logs: Vec<CachePadded<SampleLog>> = (0..SHARDS)
        .map(|_| CachePadded::new(SampleLog::new()))
        .collect();
    let vals = values(4_096, 0xBEEF);
    let mut cursors = vec![0u64; SHARDS];
    let mut window = [Box::new(Snapshot::new()), Box::new(Snapshot::new())];
    let mut lambda = Ewma::new(Duration::from_secs(5));
    let mut wait = PeakEwma::new(Duration::from_secs(5));
    let mut now = 0u64;
    c.bench_function("tick_64_sample_logs", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for it in 0..iters as usize {
                for (i, log) in logs.iter().enumerate() {
                    for k in 0..4 {
                        log.push(
                            k % 2,
                            bucket_index(vals[(it * 7 + i * 61 + k) % vals.len()]),
                            1,
                        );
                    }
                }
                let t = Instant::now();
                for w in &mut window {
                    w.clear();
                }
                let all_read = logs.iter().zip(&mut cursors).all(|(log, cursor)| {
                    log.read_new(cursor, |series, i, n| window[series].add_to_bucket(i, n))
                        .is_ok()
                });
                let mut acc = 0u64;
                for q in window[0].quantiles([0.5, 0.9, 0.99, 0.999]) {
                    acc = acc.wrapping_add(q.unwrap_or(0));
                }
                now += 500_000_000;
                lambda.update(window[0].count() as f64 * 2.0, now);
                wait.update(acc as f64, now);
                black_box((all_read, &window, &lambda, &wait));
                spent += t.elapsed();
            }
            spent
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
}

criterion_group! {
    name = signals;
    config = config();
    targets = record, quantile, tick, tick_from_logs
}
criterion_main!(signals);
