//! Submits empty tasks to a fixed pool of 2 and waits for them, for instruction counts under
//! callgrind: run it at two task counts and divide the difference in total instructions by
//! the difference in tasks to get the cost of one task (submit + run), setup excluded.
//!
//! `cargo run --release -p elastic-pool --example submit_cost -- [execute|spawn|typed|batch] [tasks] [submitters]`
//! (defaults: execute, 100000, 1), e.g.
//! `valgrind --tool=callgrind target/release/examples/submit_cost execute 200000`.

use elastic_pool::Pool;
use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

fn fixed() -> elastic_pool::Builder {
    Pool::builder().min_workers(2).max_workers(2).prestart(true)
}

/// Runs `submit(i)` for `i` in `0..tasks`, split over `submitters` threads.
fn drive(submitters: u64, tasks: u64, submit: impl Fn(u64) + Sync) {
    let per = tasks / submitters;
    std::thread::scope(|s| {
        for _ in 0..submitters {
            s.spawn(|| (0..per).for_each(&submit));
        }
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "execute".into());
    let tasks: u64 = args
        .next()
        .map_or(100_000, |s| s.parse().expect("task count"));
    let submitters: u64 = args.next().map_or(1, |s| s.parse().expect("submitters"));
    let t = Instant::now();
    match mode.as_str() {
        "execute" | "spawn" | "batch" => {
            let pool = fixed().build().expect("pool");
            match mode.as_str() {
                "execute" => drive(submitters, tasks, |i| {
                    pool.execute(move || {
                        black_box(i);
                    })
                    .expect("open")
                }),
                "spawn" => drive(submitters, tasks, |i| {
                    drop(pool.spawn(move || black_box(i)).expect("open"))
                }),
                _ => drive(submitters, tasks / 512, |b| {
                    pool.execute_batch((b * 512..(b + 1) * 512).map(|k| {
                        move || {
                            black_box(k);
                        }
                    }))
                    .expect("open")
                }),
            }
            let bar = Arc::new(Barrier::new(3));
            for _ in 0..2 {
                let bar = Arc::clone(&bar);
                pool.execute(move || {
                    bar.wait();
                })
                .expect("open");
            }
            bar.wait();
        }
        "typed" => {
            let slot = Arc::new(Mutex::new(Arc::new(Barrier::new(3))));
            let hs = Arc::clone(&slot);
            let pool = fixed()
                .build_typed(move |x: u64| {
                    if x == u64::MAX {
                        let b = Arc::clone(&hs.lock().expect("lock"));
                        b.wait();
                    } else {
                        black_box(x);
                    }
                })
                .expect("pool");
            let bar = Arc::clone(&slot.lock().expect("lock"));
            drive(submitters, tasks, |i| pool.execute(i).expect("open"));
            pool.execute(u64::MAX).expect("open");
            pool.execute(u64::MAX).expect("open");
            bar.wait();
        }
        other => panic!("unknown mode {other:?} (execute, spawn, typed or batch)"),
    }
    let d = t.elapsed();
    println!(
        "{mode}: {tasks} tasks from {submitters} submitter(s) in {d:?} ({:.0} tasks/s)",
        tasks as f64 / d.as_secs_f64()
    );
}
