//! Submits empty tasks to a fixed pool of 2 and waits for them, for instruction counts under
//! callgrind: run it at two task counts and divide the difference in total instructions by
//! the difference in tasks to get the cost of one task (submit + run), setup excluded.
//!
//! `cargo run --release -p elastic-pool --example submit_cost -- [execute|execute-nowait|spawn|typed|batch] [tasks] [submitters]`
//! (defaults: execute, 100000, 1), e.g.
//! `valgrind --tool=callgrind target/release/examples/submit_cost execute 200000`.
//! `execute-nowait` is `execute` with wait tracking off (`wait_sampling(u32::MAX)`).
//!
//! `submit_cost sampling [tasks] [rounds]` (defaults 50000, 41) times the cost of wait
//! tracking in wall-clock terms instead: two fixed pools of 2, one at the default sampling
//! and one with tracking off, each round submitting `tasks` empty tasks to one then the other
//! (alternating which goes first), and prints the median and quartiles of the per-round
//! throughput ratio on ÷ off. Alternating rounds in one process is what makes the ratio
//! usable on a noisy machine; criterion's separate runs of each were not.

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
    if mode == "sampling" {
        let tasks = args
            .next()
            .map_or(50_000, |s| s.parse().expect("task count"));
        let rounds = args.next().map_or(41, |s| s.parse().expect("rounds"));
        return sampling(tasks, rounds);
    }
    let tasks: u64 = args
        .next()
        .map_or(100_000, |s| s.parse().expect("task count"));
    let submitters: u64 = args.next().map_or(1, |s| s.parse().expect("submitters"));
    let t = Instant::now();
    match mode.as_str() {
        "execute" | "execute-nowait" | "spawn" | "batch" => {
            let b = if mode == "execute-nowait" {
                fixed().wait_sampling(u32::MAX)
            } else {
                fixed()
            };
            let pool = b.build().expect("pool");
            match mode.as_str() {
                "execute" | "execute-nowait" => drive(submitters, tasks, |i| {
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
            finish(&pool);
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
        other => panic!(
            "unknown mode {other:?} (execute, execute-nowait, spawn, typed, batch or sampling)"
        ),
    }
    let d = t.elapsed();
    println!(
        "{mode}: {tasks} tasks from {submitters} submitter(s) in {d:?} ({:.0} tasks/s)",
        tasks as f64 / d.as_secs_f64()
    );
}

/// Waits until both workers of a fixed pool of 2 have run everything submitted before.
fn finish(pool: &Pool) {
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

/// Tasks per second for `tasks` empty tasks from one thread, until all ran.
fn round(pool: &Pool, tasks: u64) -> f64 {
    let t = Instant::now();
    for i in 0..tasks {
        pool.execute(move || {
            black_box(i);
        })
        .expect("open");
    }
    finish(pool);
    tasks as f64 / t.elapsed().as_secs_f64()
}

/// The alternating on/off harness (see the module docs).
fn sampling(tasks: u64, rounds: u64) {
    let on = fixed().build().expect("pool");
    let off = fixed().wait_sampling(u32::MAX).build().expect("pool");
    // Warm both (threads started, queues and allocator warm).
    round(&on, tasks);
    round(&off, tasks);
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|r| {
            if r % 2 == 0 {
                let a = round(&on, tasks);
                a / round(&off, tasks)
            } else {
                let b = round(&off, tasks);
                round(&on, tasks) / b
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let q = |f: f64| ratios[((ratios.len() - 1) as f64 * f).round() as usize];
    println!(
        "wait tracking on (sampling {}) / off, {rounds} rounds of {tasks} empty tasks: median {:.3} (quartiles {:.3}-{:.3})",
        elastic_pool::DEFAULT_WAIT_SAMPLING,
        q(0.5),
        q(0.25),
        q(0.75)
    );
}
