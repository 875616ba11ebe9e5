//! Empty-task throughput on a pool of 2, from 1 and 2 submitters, for this pool (closures,
//! typed, batches) and its peers side by side in one process: rusty_pool, threadpool,
//! rayon `spawn`, tokio `spawn_blocking`, and a bare crossbeam channel with 2 fixed threads
//! (the floor a pool adds overhead to).
//!
//! `elastic-pool-nowait` is the closure pool with wait sampling turned off
//! (`wait_sampling(u32::MAX)`), to price the default 1-in-8 sampling.
//!
//! Each iteration submits `TASKS` empty tasks, then two barrier tasks that each block one
//! of the two workers until the bench thread joins them: once all three meet, every
//! earlier task has finished. The time from the first submit to the meeting is the
//! iteration's time.
//!
//! `reject`: one refused `try_execute` on a saturated pool of 1 (worker blocked, queue of 16
//! full), the job handed back; the typed pool's, and a full crossbeam channel's `try_send`
//! for contrast. Run: `cargo bench -p elastic-pool --bench throughput`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const TASKS: u64 = 50_000;

/// Splits `TASKS` submits over `submitters` threads, each calling `submit(i)`.
fn drive(submitters: usize, submit: impl Fn(u64) + Sync) {
    let per = TASKS / submitters as u64;
    std::thread::scope(|s| {
        for _ in 0..submitters {
            s.spawn(|| {
                for i in 0..per {
                    submit(i);
                }
            });
        }
    });
}

fn time_iters(iters: u64, mut once: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        once();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    for submitters in [1usize, 2] {
        let mut g = c.benchmark_group(format!("empty-{submitters}p"));
        g.throughput(Throughput::Elements(TASKS));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(3));

        // --- elastic-pool, closures ------------------------------------------------------
        let pool = elastic_pool::Pool::builder()
            .min_workers(2)
            .max_workers(2)
            .prestart(true)
            .build()
            .unwrap();
        g.bench_function(BenchmarkId::new("elastic-pool", submitters), |b| {
            b.iter_custom(|iters| {
                time_iters(iters, || {
                    drive(submitters, |i| {
                        pool.execute(move || {
                            black_box(i);
                        })
                        .unwrap()
                    });
                    let bar = Arc::new(Barrier::new(3));
                    for _ in 0..2 {
                        let bar = Arc::clone(&bar);
                        pool.execute(move || {
                            bar.wait();
                        })
                        .unwrap();
                    }
                    bar.wait();
                })
            })
        });
        drop(pool);

        // --- elastic-pool, closures, wait tracking off (for the cost of sampling) ----------
        let pool = elastic_pool::Pool::builder()
            .min_workers(2)
            .max_workers(2)
            .prestart(true)
            .wait_sampling(u32::MAX)
            .build()
            .unwrap();
        g.bench_function(BenchmarkId::new("elastic-pool-nowait", submitters), |b| {
            b.iter_custom(|iters| {
                time_iters(iters, || {
                    drive(submitters, |i| {
                        pool.execute(move || {
                            black_box(i);
                        })
                        .unwrap()
                    });
                    let bar = Arc::new(Barrier::new(3));
                    for _ in 0..2 {
                        let bar = Arc::clone(&bar);
                        pool.execute(move || {
                            bar.wait();
                        })
                        .unwrap();
                    }
                    bar.wait();
                })
            })
        });
        drop(pool);

        // --- elastic-pool, typed ---------------------------------------------------------
        let bar = Arc::new(std::sync::Mutex::new(Arc::new(Barrier::new(3))));
        let hb = Arc::clone(&bar);
        let typed = elastic_pool::Pool::builder()
            .min_workers(2)
            .max_workers(2)
            .prestart(true)
            .build_typed(move |x: u64| {
                if x == u64::MAX {
                    let b = Arc::clone(&hb.lock().unwrap());
                    b.wait();
                } else {
                    black_box(x);
                }
            })
            .unwrap();
        g.bench_function(BenchmarkId::new("elastic-pool-typed", submitters), |b| {
            b.iter_custom(|iters| {
                time_iters(iters, || {
                    let round = Arc::new(Barrier::new(3));
                    *bar.lock().unwrap() = Arc::clone(&round);
                    drive(submitters, |i| typed.execute(i).unwrap());
                    typed.execute(u64::MAX).unwrap();
                    typed.execute(u64::MAX).unwrap();
                    round.wait();
                })
            })
        });
        drop(typed);

        // --- elastic-pool, batches of closures -------------------------------------------
        let pool = elastic_pool::Pool::builder()
            .min_workers(2)
            .max_workers(2)
            .prestart(true)
            .build()
            .unwrap();
        g.bench_function(BenchmarkId::new("elastic-pool-batch", submitters), |b| {
            b.iter_custom(|iters| {
                time_iters(iters, || {
                    let per = TASKS / submitters as u64;
                    std::thread::scope(|s| {
                        for _ in 0..submitters {
                            s.spawn(|| {
                                let mut i = 0;
                                while i < per {
                                    let end = (i + 512).min(per);
                                    pool.execute_batch((i..end).map(|k| {
                                        move || {
                                            black_box(k);
                                        }
                                    }))
                                    .unwrap();
                                    i = end;
                                }
                            });
                        }
                    });
                    let bar = Arc::new(Barrier::new(3));
                    for _ in 0..2 {
                        let bar = Arc::clone(&bar);
                        pool.execute(move || {
                            bar.wait();
                        })
                        .unwrap();
                    }
                    bar.wait();
                })
            })
        });
        drop(pool);

        // --- rusty_pool ------------------------------------------------------------------
        let rp = rusty_pool::ThreadPool::new(2, 2, Duration::from_secs(60));
        rp.start_core_threads();
        g.bench_function(BenchmarkId::new("rusty_pool", submitters), |b| {
            b.iter_custom(|iters| {
                time_iters(iters, || {
                    drive(submitters, |i| {
                        rp.execute(move || {
                            black_box(i);
                        })
                    });
                    let bar = Arc::new(Barrier::new(3));
                    for _ in 0..2 {
                        let bar = Arc::clone(&bar);
                        rp.execute(move || {
                            bar.wait();
                        });
                    }
                    bar.wait();
                })
            })
        });
        drop(rp);

        // --- threadpool ------------------------------------------------------------------
        let tp = threadpool::ThreadPool::new(2);
        let tp = std::sync::Mutex::new(tp);
        g.bench_function(BenchmarkId::new("threadpool", submitters), |b| {
            b.iter_custom(|iters| {
                // threadpool::ThreadPool is Send but not Sync: each submitter gets a clone.
                let handles: Vec<_> = (0..submitters)
                    .map(|_| tp.lock().unwrap().clone())
                    .collect();
                time_iters(iters, || {
                    let per = TASKS / submitters as u64;
                    std::thread::scope(|s| {
                        for h in &handles {
                            let h = h.clone();
                            s.spawn(move || {
                                for i in 0..per {
                                    h.execute(move || {
                                        black_box(i);
                                    });
                                }
                            });
                        }
                    });
                    let bar = Arc::new(Barrier::new(3));
                    for _ in 0..2 {
                        let bar = Arc::clone(&bar);
                        handles[0].execute(move || {
                            bar.wait();
                        });
                    }
                    bar.wait();
                })
            })
        });
        drop(tp);

        // --- rayon spawn -----------------------------------------------------------------
        let rayon_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        g.bench_function(BenchmarkId::new("rayon", submitters), |b| {
            b.iter_custom(|iters| {
                time_iters(iters, || {
                    drive(submitters, |i| {
                        rayon_pool.spawn(move || {
                            black_box(i);
                        })
                    });
                    let bar = Arc::new(Barrier::new(3));
                    for _ in 0..2 {
                        let bar = Arc::clone(&bar);
                        rayon_pool.spawn(move || {
                            bar.wait();
                        });
                    }
                    bar.wait();
                })
            })
        });
        drop(rayon_pool);

        // --- tokio spawn_blocking ----------------------------------------------------------
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(2)
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        g.bench_function(BenchmarkId::new("tokio-blocking", submitters), |b| {
            b.iter_custom(|iters| {
                time_iters(iters, || {
                    drive(submitters, |i| {
                        drop(handle.spawn_blocking(move || {
                            black_box(i);
                        }))
                    });
                    let bar = Arc::new(Barrier::new(3));
                    for _ in 0..2 {
                        let bar = Arc::clone(&bar);
                        drop(handle.spawn_blocking(move || {
                            bar.wait();
                        }));
                    }
                    bar.wait();
                })
            })
        });
        drop(rt);

        // --- the floor: a bare channel and 2 fixed threads ---------------------------------
        type Task = Box<dyn FnOnce() + Send>;
        let (tx, rx) = crossbeam_channel::bounded::<Task>(65_536);
        let floor: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    while let Ok(t) = rx.recv() {
                        t();
                    }
                })
            })
            .collect();
        g.bench_function(BenchmarkId::new("channel-floor", submitters), |b| {
            b.iter_custom(|iters| {
                time_iters(iters, || {
                    drive(submitters, |i| {
                        tx.send(Box::new(move || {
                            black_box(i);
                        }))
                        .unwrap()
                    });
                    let bar = Arc::new(Barrier::new(3));
                    for _ in 0..2 {
                        let bar = Arc::clone(&bar);
                        tx.send(Box::new(move || {
                            bar.wait();
                        }))
                        .unwrap();
                    }
                    bar.wait();
                })
            })
        });
        drop(tx);
        for t in floor {
            t.join().unwrap();
        }
        g.finish();
    }
}

fn reject(c: &mut Criterion) {
    let mut g = c.benchmark_group("reject");
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(2));
    let open = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let held = Arc::new(Barrier::new(2));
    let blocker = |open: &Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>| {
        let (open, held) = (Arc::clone(open), Arc::clone(&held));
        move || {
            held.wait();
            let (m, cv) = &*open;
            let mut g = m.lock().unwrap();
            while !*g {
                g = cv.wait(g).unwrap();
            }
        }
    };
    let pool = elastic_pool::Pool::builder()
        .min_workers(1)
        .max_workers(1)
        .prestart(true)
        .queue_capacity(16)
        .build()
        .unwrap();
    pool.execute(blocker(&open)).unwrap();
    held.wait();
    while pool.try_execute(|| {}).is_ok() {}
    let mut i = 0u64;
    g.bench_function("elastic-pool", |b| {
        b.iter(|| {
            i += 1;
            let k = i;
            let back = pool.try_execute(move || {
                black_box(k);
            });
            black_box(back.unwrap_err());
        })
    });
    let typed_block = blocker(&open);
    let typed_block = std::sync::Mutex::new(Some(typed_block));
    let typed = elastic_pool::Pool::builder()
        .min_workers(1)
        .max_workers(1)
        .prestart(true)
        .queue_capacity(16)
        .build_typed(move |x: u64| {
            if x == u64::MAX {
                if let Some(f) = typed_block.lock().unwrap().take() {
                    f();
                }
            }
        })
        .unwrap();
    typed.execute(u64::MAX).unwrap();
    held.wait();
    while typed.try_execute(0).is_ok() {}
    g.bench_function("elastic-pool-typed", |b| {
        b.iter(|| black_box(typed.try_execute(black_box(7)).unwrap_err()))
    });
    type Task = Box<dyn FnOnce() + Send>;
    let (tx, _rx) = crossbeam_channel::bounded::<Task>(16);
    while tx.try_send(Box::new(|| {})).is_ok() {}
    g.bench_function("channel-floor", |b| {
        b.iter(|| {
            i += 1;
            let k = i;
            black_box(
                tx.try_send(Box::new(move || {
                    black_box(k);
                }))
                .unwrap_err(),
            );
        })
    });
    g.finish();
    let (m, cv) = &*open;
    *m.lock().unwrap() = true;
    cv.notify_all();
}

criterion_group!(benches, bench, reject);
criterion_main!(benches);
