//! `elastic-pool bench`: this pool and its peers side by side in one process, in alternating
//! rounds, each figure a median with min and max over rounds, plus the ratio ours/peer.
//!
//! Scenarios (`--scenario NAME` runs one; a name selects every entry that starts with it,
//! so `wake` runs `wake-p50` and `wake-p99` from the same samples):
//! - `empty-1p`, `empty-2p`: empty tasks on a pool of 2, from 1 and 2 submitters (tasks/s).
//!   Each measurement submits a fixed number of tasks, then two barrier tasks that block
//!   both workers until the bench thread joins them: the time to that meeting is the
//!   measurement (as `benches/throughput.rs`).
//! - `reject`: ns per refused non-blocking submit on a saturated pool, job handed back.
//! - `wake-p50`, `wake-p99`: submit → task start on a parked pool of 2, with a 1 ms sleep
//!   between samples so the workers park again; the bench thread blocks (parks) until the
//!   task stamps its start and unparks it (see `wake` for why it must not spin).
//! - `burst-wall`, `burst-threads`, `burst-submit`: 10 000 tasks of 1 ms sleep, max 1 000
//!   workers: wall time to the last completion, peak extra threads (polled from /proc), and
//!   time spent inside the submit calls.
//! - `grow`: build + submit until 256 tasks are running at once.
//! - `idle-cpu`, `idle-wakeups`: 64 idle workers and the control thread for 5 s.
//! - `signals-record-1t`, `signals-record-log`, `signals-record-2t`, `signals-p99`,
//!   `signals-tick`, `signals-window`, `signals-tick-quiet`: the signal path (as
//!   `benches/signals.rs` and `examples/tick_cost.rs`); `signals-window` is the signal read
//!   alone (`metrics()` on a fixed pool of 64 closing a window).
//! - `memory-worker`, `memory-metrics-fixed`, `memory-metrics-worker`: resident bytes per
//!   idle worker (two pools of 64 and 128 workers alive at once; the difference prices a
//!   worker), and the metric state's size.
//!
//! Every pool of a scenario is built before the first round and measured once per round in
//! turn, so slow drift of the machine hits every pool alike.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use elastic_pool::histogram::{Histogram, Snapshot};
use elastic_pool::policy::Policy;
use elastic_pool::{Pool, TrySubmitError};
use elastic_pool_cli::app::AppError;
use serde::Serialize;

/// Every scenario name, in run order.
/// `idle` runs before `burst` and `grow`, whose peers leave threads that linger up to
/// their 10 s keep-alive and would be counted as the process's idle CPU.
pub const SCENARIOS: &[&str] = &[
    "empty-1p", "empty-2p", "reject", "wake", "idle", "burst", "grow", "signals", "memory",
];

/// Options of `elastic-pool bench`.
#[derive(Clone, Debug, Default)]
pub struct BenchOpts {
    /// Fewer rounds and samples: under 60 s in all.
    pub quick: bool,
    /// Print a JSON array instead of tables.
    pub json: bool,
    /// Run only this scenario.
    pub scenario: Option<String>,
}

/// One pool's figure over the rounds.
#[derive(Clone, Debug, Serialize)]
pub struct PoolResult {
    pool: String,
    median: f64,
    min: f64,
    max: f64,
}

/// One scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    scenario: String,
    unit: String,
    higher_is_better: bool,
    results: Vec<PoolResult>,
}

fn summarize(pool: &str, mut v: Vec<f64>) -> PoolResult {
    v.sort_by(f64::total_cmp);
    let median = if v.is_empty() {
        f64::NAN
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    PoolResult {
        pool: pool.to_string(),
        median,
        min: v.first().copied().unwrap_or(f64::NAN),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

fn scenario(name: &str, unit: &str, higher: bool, samples: Vec<(&str, Vec<f64>)>) -> Scenario {
    Scenario {
        scenario: name.to_string(),
        unit: unit.to_string(),
        higher_is_better: higher,
        results: samples.into_iter().map(|(p, v)| summarize(p, v)).collect(),
    }
}

/// `elastic-pool bench`.
///
/// # Errors
/// [`AppError::Input`] for an unknown scenario.
pub fn run(opts: &BenchOpts) -> Result<(), AppError> {
    let selected: Vec<&str> = match &opts.scenario {
        None => SCENARIOS.to_vec(),
        Some(s) => {
            let hit: Vec<&str> = SCENARIOS
                .iter()
                .copied()
                .filter(|n| n == s || s.starts_with(&format!("{n}-")))
                .collect();
            if hit.is_empty() {
                return Err(AppError::Input(format!(
                    "unknown scenario `{s}`; scenarios: {}",
                    SCENARIOS.join(", ")
                )));
            }
            hit
        }
    };
    let q = opts.quick;
    let mut out: Vec<Scenario> = Vec::new();
    for name in selected {
        if !opts.json {
            eprintln!("running {name}...");
        }
        let started = out.len();
        match name {
            "empty-1p" => out.push(empty(1, q)),
            "empty-2p" => out.push(empty(2, q)),
            "reject" => out.push(reject(q)),
            "wake" => out.extend(wake(q)),
            "burst" => out.extend(burst(q)),
            "grow" => out.push(grow(q)),
            "idle" => out.extend(idle(q)),
            "signals" => out.extend(signals(q)),
            "memory" => out.extend(memory(q)),
            _ => unreachable!("listed in SCENARIOS"),
        }
        // A scenario with sub-entries: keep only the asked one if one was named.
        if let Some(s) = &opts.scenario {
            if s != name {
                let kept: Vec<Scenario> =
                    out.drain(started..).filter(|e| &e.scenario == s).collect();
                if kept.is_empty() {
                    return Err(AppError::Input(format!("unknown scenario `{s}`")));
                }
                out.extend(kept);
            }
        }
        if !opts.json {
            for s in &out[started..] {
                print!("{}", table(s));
            }
        }
    }
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| AppError::Run(e.to_string()))?
        );
    }
    Ok(())
}

/// A Markdown table of one scenario, with the ratio ours/peer (oriented so > 1 is better
/// for us) against `elastic-pool`.
pub fn table(s: &Scenario) -> String {
    let ours = s
        .results
        .iter()
        .find(|r| r.pool == "elastic-pool")
        .map(|r| r.median);
    let mut t = format!(
        "\n{} ({}, {} is better)\n\n| pool | median | min | max | elastic-pool vs this |\n|---|---:|---:|---:|---:|\n",
        s.scenario,
        s.unit,
        if s.higher_is_better { "higher" } else { "lower" }
    );
    for r in &s.results {
        let ratio = match ours {
            Some(o) if r.pool != "elastic-pool" && r.median > 0.0 && o > 0.0 => {
                let x = if s.higher_is_better {
                    o / r.median
                } else {
                    r.median / o
                };
                format!("{x:.2}×")
            }
            _ => "—".to_string(),
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            r.pool,
            fmt(r.median),
            fmt(r.min),
            fmt(r.max),
            ratio
        ));
    }
    t
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if x.abs() >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

// ----------------------------------------------------------------------------------------
// empty-1p / empty-2p

type BoxTask = Box<dyn FnOnce() + Send>;

/// One measurement: submit `tasks` empty tasks from `submitters` threads, then wait until
/// both workers have met the bench thread at a barrier. Returns the elapsed time.
type EmptyRun<'a> = Box<dyn FnMut(usize, u64) -> Duration + 'a>;

fn drive(submitters: usize, tasks: u64, submit: impl Fn(u64) + Sync) {
    let per = tasks / submitters as u64;
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

fn fixed_pool(n: usize) -> Pool {
    Pool::builder()
        .min_workers(n)
        .max_workers(n)
        .prestart(true)
        .build()
        .expect("valid pool")
}

fn empty(submitters: usize, quick: bool) -> Scenario {
    let (rounds, tasks) = if quick { (5, 50_000) } else { (15, 200_000) };
    let mut runs: Vec<(&str, EmptyRun)> = Vec::new();

    // elastic-pool, closures
    let pool = fixed_pool(2);
    runs.push((
        "elastic-pool",
        Box::new(move |s, n| {
            let t = Instant::now();
            drive(s, n, |i| {
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
            t.elapsed()
        }),
    ));

    // elastic-pool, typed
    let slot = Arc::new(Mutex::new(Arc::new(Barrier::new(3))));
    let hs = Arc::clone(&slot);
    let typed = Pool::builder()
        .min_workers(2)
        .max_workers(2)
        .prestart(true)
        .build_typed(move |x: u64| {
            if x == u64::MAX {
                let b = Arc::clone(&hs.lock().unwrap());
                b.wait();
            } else {
                black_box(x);
            }
        })
        .expect("valid pool");
    runs.push((
        "elastic-pool-typed",
        Box::new(move |s, n| {
            let round = Arc::new(Barrier::new(3));
            *slot.lock().unwrap() = Arc::clone(&round);
            let t = Instant::now();
            drive(s, n, |i| typed.execute(i).unwrap());
            typed.execute(u64::MAX).unwrap();
            typed.execute(u64::MAX).unwrap();
            round.wait();
            t.elapsed()
        }),
    ));

    // elastic-pool, batches of 512 closures
    let bpool = fixed_pool(2);
    runs.push((
        "elastic-pool-batch",
        Box::new(move |s, n| {
            let t = Instant::now();
            let per = n / s as u64;
            std::thread::scope(|sc| {
                for _ in 0..s {
                    sc.spawn(|| {
                        let mut i = 0;
                        while i < per {
                            let end = (i + 512).min(per);
                            bpool
                                .execute_batch((i..end).map(|k| {
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
                bpool
                    .execute(move || {
                        bar.wait();
                    })
                    .unwrap();
            }
            bar.wait();
            t.elapsed()
        }),
    ));

    // rusty_pool
    let rp = rusty_pool::ThreadPool::new(2, 2, Duration::from_secs(60));
    rp.start_core_threads();
    runs.push((
        "rusty_pool",
        Box::new(move |s, n| {
            let t = Instant::now();
            drive(s, n, |i| {
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
            t.elapsed()
        }),
    ));

    // threadpool (Send, not Sync: one clone per submitter)
    let tp = threadpool::ThreadPool::new(2);
    runs.push((
        "threadpool",
        Box::new(move |s, n| {
            let handles: Vec<_> = (0..s).map(|_| tp.clone()).collect();
            let t = Instant::now();
            let per = n / s as u64;
            std::thread::scope(|sc| {
                for h in &handles {
                    let h = h.clone();
                    sc.spawn(move || {
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
                tp.execute(move || {
                    bar.wait();
                });
            }
            bar.wait();
            t.elapsed()
        }),
    ));

    // rayon spawn
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool");
    runs.push((
        "rayon",
        Box::new(move |s, n| {
            let t = Instant::now();
            drive(s, n, |i| {
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
            t.elapsed()
        }),
    ));

    // tokio spawn_blocking, 2 blocking threads
    let rt = tokio_rt(2);
    let handle = rt.handle().clone();
    runs.push((
        "tokio-blocking",
        Box::new(move |s, n| {
            let _keep = &rt;
            let t = Instant::now();
            drive(s, n, |i| {
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
            t.elapsed()
        }),
    ));

    // the floor: a bare channel and 2 fixed threads
    let floor = Floor::new(2, 65_536);
    runs.push((
        "channel-floor",
        Box::new(move |s, n| {
            let t = Instant::now();
            drive(s, n, |i| {
                floor
                    .tx
                    .send(Box::new(move || {
                        black_box(i);
                    }))
                    .unwrap()
            });
            let bar = Arc::new(Barrier::new(3));
            for _ in 0..2 {
                let bar = Arc::clone(&bar);
                floor
                    .tx
                    .send(Box::new(move || {
                        bar.wait();
                    }))
                    .unwrap();
            }
            bar.wait();
            t.elapsed()
        }),
    ));

    // warm-up: one small pass each
    for (_, r) in runs.iter_mut() {
        r(submitters, tasks / 10);
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for _ in 0..rounds {
        for (k, (_, r)) in runs.iter_mut().enumerate() {
            let d = r(submitters, tasks);
            samples[k].push(tasks as f64 / d.as_secs_f64());
        }
    }
    let names: Vec<&str> = runs.iter().map(|(n, _)| *n).collect();
    drop(runs);
    scenario(
        &format!("empty-{submitters}p"),
        "tasks/s",
        true,
        names.into_iter().zip(samples).collect(),
    )
}

fn tokio_rt(blocking: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(blocking)
        .thread_keep_alive(Duration::from_secs(60))
        .build()
        .expect("tokio runtime")
}

/// A bare crossbeam channel served by fixed threads: the floor a pool adds overhead to.
struct Floor {
    tx: crossbeam_channel::Sender<BoxTask>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Floor {
    fn new(threads: usize, cap: usize) -> Floor {
        let (tx, rx) = crossbeam_channel::bounded::<BoxTask>(cap);
        let threads = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                std::thread::spawn(move || {
                    while let Ok(t) = rx.recv() {
                        t();
                    }
                })
            })
            .collect();
        Floor { tx, threads }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let (dead, _) = crossbeam_channel::bounded(1);
        drop(std::mem::replace(&mut self.tx, dead));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

// ----------------------------------------------------------------------------------------
// reject

fn reject(quick: bool) -> Scenario {
    let (rounds, calls) = if quick {
        (5, 200_000u64)
    } else {
        (15, 2_000_000)
    };
    // A pool of 1 whose worker is blocked and whose queue of 16 is full.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let block = |g: &Arc<(Mutex<bool>, Condvar)>| {
        let g = Arc::clone(g);
        move || {
            let (m, c) = &*g;
            let mut open = m.lock().unwrap();
            while !*open {
                open = c.wait(open).unwrap();
            }
        }
    };
    let pool = Pool::builder()
        .min_workers(1)
        .max_workers(1)
        .prestart(true)
        .queue_capacity(16)
        .build()
        .expect("valid pool");
    // Fill the queue only once the worker holds the blocker, or it would free a slot.
    let held = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&held);
    let blocker = block(&gate);
    pool.execute(move || {
        h.fetch_add(1, Ordering::Release);
        blocker();
    })
    .unwrap();
    wait_for(&held, 1);
    while pool.try_execute(|| {}).is_ok() {}
    let gate2 = Arc::clone(&gate);
    let h2 = Arc::clone(&held);
    let typed = Pool::builder()
        .min_workers(1)
        .max_workers(1)
        .prestart(true)
        .queue_capacity(16)
        .build_typed(move |x: u64| {
            if x == u64::MAX {
                h2.fetch_add(1, Ordering::Release);
                let (m, c) = &*gate2;
                let mut open = m.lock().unwrap();
                while !*open {
                    open = c.wait(open).unwrap();
                }
            }
        })
        .expect("valid pool");
    typed.execute(u64::MAX).unwrap();
    wait_for(&held, 2);
    while typed.try_execute(0).is_ok() {}
    let (ftx, frx) = crossbeam_channel::bounded::<BoxTask>(16);
    while ftx.try_send(Box::new(|| {})).is_ok() {}

    let time = |f: &mut dyn FnMut(u64)| -> f64 {
        let t = Instant::now();
        for i in 0..calls {
            f(i);
        }
        t.elapsed().as_nanos() as f64 / calls as f64
    };
    let mut ours = Vec::new();
    let mut ours_typed = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..rounds {
        ours.push(time(&mut |i| match pool.try_execute(move || {
            black_box(i);
        }) {
            Err(TrySubmitError::Overloaded(f)) => {
                black_box(&f);
            }
            _ => panic!("the pool is saturated"),
        }));
        ours_typed.push(time(&mut |i| match typed.try_execute(i) {
            Err(TrySubmitError::Overloaded(v)) => {
                black_box(v);
            }
            _ => panic!("the pool is saturated"),
        }));
        floor.push(time(&mut |i| match ftx.try_send(Box::new(move || {
            black_box(i);
        })) {
            Err(crossbeam_channel::TrySendError::Full(f)) => {
                black_box(&f);
            }
            _ => panic!("the channel is full"),
        }));
    }
    {
        let (m, c) = &*gate;
        *m.lock().unwrap() = true;
        c.notify_all();
    }
    drop(frx);
    scenario(
        "reject",
        "ns/call",
        false,
        vec![
            ("elastic-pool", ours),
            ("elastic-pool-typed", ours_typed),
            ("channel-floor", floor),
        ],
    )
}

// ----------------------------------------------------------------------------------------
// wake

/// Submits a job that runs the given closure.
type Submit = Box<dyn Fn(BoxTask)>;

fn wake(quick: bool) -> Vec<Scenario> {
    let (rounds, per_round, pause) = if quick {
        (3, 200, Duration::from_millis(1))
    } else {
        (10, 1_000, Duration::from_millis(1))
    };
    let mut subs: Vec<(&str, Submit)> = Vec::new();
    let pool = fixed_pool(2);
    subs.push(("elastic-pool", Box::new(move |t| pool.execute(t).unwrap())));
    let rp = rusty_pool::ThreadPool::new(2, 2, Duration::from_secs(60));
    rp.start_core_threads();
    subs.push(("rusty_pool", Box::new(move |t| rp.execute(t))));
    let tp = threadpool::ThreadPool::new(2);
    subs.push(("threadpool", Box::new(move |t| tp.execute(t))));
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool");
    subs.push(("rayon", Box::new(move |t| rayon_pool.spawn(t))));
    let rt = tokio_rt(2);
    // Start both blocking threads so the samples measure a wake, not a thread start.
    {
        let b = Arc::new(Barrier::new(3));
        for _ in 0..2 {
            let b = Arc::clone(&b);
            drop(rt.handle().spawn_blocking(move || {
                b.wait();
            }));
        }
        b.wait();
    }
    subs.push((
        "tokio-blocking",
        Box::new(move |t| drop(rt.handle().spawn_blocking(t))),
    ));
    let floor = Floor::new(2, 1024);
    subs.push((
        "channel-floor",
        Box::new(move |t| floor.tx.send(t).unwrap()),
    ));

    // How the bench thread waits matters as much as the pool on a small VM, so it models a
    // submitter with nothing else to do: it sleeps through the pause (both vCPUs go idle,
    // every worker parks), submits, and blocks until the task has stamped its start and
    // unparked it. The stamp is the task's first instruction; the unpark comes after it
    // and is not timed.
    //
    // It must not spin for the stamp. A spinning waiter holds its vCPU, so the woken
    // worker either waits in that vCPU's run queue until the spinner yields (unless the
    // scheduler lets it preempt the spinner, which depends on how much CPU each thread used
    // lately) or goes to the other vCPU, which has halted and takes 20-30 µs to come back on
    // this KVM guest. The old spin-then-yield loop measured mostly its own 1 000-iteration
    // spin budget (about 40 µs here for every pool), and which pool was fastest depended on
    // which ones the scheduler let preempt it.
    let base = Instant::now();
    let started = Arc::new(AtomicU64::new(0));
    let waiter = std::thread::current();
    let mut p50 = vec![Vec::new(); subs.len()];
    let mut p99 = vec![Vec::new(); subs.len()];
    for _ in 0..rounds {
        for (k, (_, submit)) in subs.iter().enumerate() {
            let mut lat = Vec::with_capacity(per_round);
            for _ in 0..per_round {
                std::thread::sleep(pause);
                started.store(0, Ordering::SeqCst);
                let s = Arc::clone(&started);
                let w = waiter.clone();
                let t0 = base.elapsed().as_nanos() as u64;
                submit(Box::new(move || {
                    s.store(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
                    w.unpark();
                }));
                let t1 = loop {
                    let v = started.load(Ordering::SeqCst);
                    if v != 0 {
                        break v;
                    }
                    // A token left by an earlier sample's unpark only costs one more look.
                    std::thread::park();
                };
                lat.push(t1.saturating_sub(t0) as f64 / 1e3);
            }
            lat.sort_by(f64::total_cmp);
            p50[k].push(lat[lat.len() / 2]);
            p99[k].push(lat[(lat.len() * 99 / 100).min(lat.len() - 1)]);
        }
    }
    let names: Vec<&str> = subs.iter().map(|(n, _)| *n).collect();
    drop(subs);
    vec![
        scenario(
            "wake-p50",
            "µs",
            false,
            names.iter().copied().zip(p50).collect(),
        ),
        scenario(
            "wake-p99",
            "µs",
            false,
            names.iter().copied().zip(p99).collect(),
        ),
    ]
}

// ----------------------------------------------------------------------------------------
// burst and grow

/// Threads of this process, from /proc/self/status (0 where unavailable).
fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Threads:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Polls the thread count every millisecond until dropped; reports the peak.
struct PeakThreads {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakThreads {
    fn start() -> PeakThreads {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(thread_count()));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&peak));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(thread_count(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        PeakThreads {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// A pool under test for `burst` and `grow`: built by `build(max)`, which returns the
/// submit function and a guard that tears the pool down when dropped.
type Builds = Vec<(&'static str, fn(usize) -> (Submit, Box<dyn std::any::Any>))>;

fn elastic_build(max: usize) -> (Submit, Box<dyn std::any::Any>) {
    let pool = Pool::builder()
        .min_workers(0)
        .max_workers(max)
        .build()
        .expect("valid pool");
    let p = pool.clone();
    (Box::new(move |t| p.execute(t).unwrap()), Box::new(pool))
}

fn elastic_auto_build(max: usize) -> (Submit, Box<dyn std::any::Any>) {
    let pool = Pool::builder()
        .autoscale(Policy {
            min_workers: 0,
            max_workers: max,
            ..Policy::default()
        })
        .build()
        .expect("valid policy");
    let p = pool.clone();
    (Box::new(move |t| p.execute(t).unwrap()), Box::new(pool))
}

fn rusty_build(max: usize) -> (Submit, Box<dyn std::any::Any>) {
    let rp = rusty_pool::ThreadPool::new(0, max, Duration::from_secs(10));
    let r = rp.clone();
    (Box::new(move |t| r.execute(t)), Box::new(rp))
}

fn threadpool_build(max: usize) -> (Submit, Box<dyn std::any::Any>) {
    let tp = threadpool::ThreadPool::new(max);
    let t2 = tp.clone();
    (Box::new(move |t| t2.execute(t)), Box::new(tp))
}

fn rayon_build(max: usize) -> (Submit, Box<dyn std::any::Any>) {
    let rp = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(max)
            .build()
            .expect("rayon pool"),
    );
    let r = Arc::clone(&rp);
    (Box::new(move |t| r.spawn(t)), Box::new(rp))
}

/// Shuts the runtime down without waiting for its threads when dropped.
struct TokioGuard(Option<tokio::runtime::Runtime>);

impl Drop for TokioGuard {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn tokio_build(max: usize) -> (Submit, Box<dyn std::any::Any>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(max)
        .thread_keep_alive(Duration::from_secs(10))
        .build()
        .expect("tokio runtime");
    let h = rt.handle().clone();
    (
        Box::new(move |t| drop(h.spawn_blocking(t))),
        Box::new(TokioGuard(Some(rt))),
    )
}

fn peers() -> Builds {
    vec![
        ("elastic-pool", elastic_build),
        ("elastic-pool-autoscaled", elastic_auto_build),
        ("rusty_pool", rusty_build),
        ("threadpool", threadpool_build),
        ("rayon", rayon_build),
        ("tokio-blocking", tokio_build),
    ]
}

/// Waits (sleeping) until the counter reaches `n`.
fn wait_for(c: &AtomicUsize, n: usize) {
    while c.load(Ordering::Acquire) < n {
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn burst(quick: bool) -> Vec<Scenario> {
    const TASKS: usize = 10_000;
    const MAX: usize = 1_000;
    let rounds = if quick { 1 } else { 3 };
    let builds = peers();
    let mut wall = vec![Vec::new(); builds.len()];
    let mut threads = vec![Vec::new(); builds.len()];
    let mut submit_ms = vec![Vec::new(); builds.len()];
    for _ in 0..rounds {
        for (k, (_, build)) in builds.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(100)); // let the last pool's threads go
            let before = thread_count();
            let (submit, guard) = build(MAX);
            let monitor = PeakThreads::start();
            let done = Arc::new(AtomicUsize::new(0));
            let t = Instant::now();
            for _ in 0..TASKS {
                let d = Arc::clone(&done);
                submit(Box::new(move || {
                    std::thread::sleep(Duration::from_millis(1));
                    d.fetch_add(1, Ordering::Release);
                }));
            }
            let in_submit = t.elapsed();
            wait_for(&done, TASKS);
            let elapsed = t.elapsed();
            let peak = monitor.finish();
            wall[k].push(elapsed.as_secs_f64() * 1e3);
            submit_ms[k].push(in_submit.as_secs_f64() * 1e3);
            // minus the monitor thread itself
            threads[k].push(peak.saturating_sub(before + 1) as f64);
            drop(submit);
            drop(guard);
        }
    }
    let names: Vec<&str> = builds.iter().map(|(n, _)| *n).collect();
    vec![
        scenario(
            "burst-wall",
            "ms",
            false,
            names.iter().copied().zip(wall).collect(),
        ),
        scenario(
            "burst-threads",
            "peak threads",
            false,
            names.iter().copied().zip(threads).collect(),
        ),
        scenario(
            "burst-submit",
            "ms in submit calls",
            false,
            names.iter().copied().zip(submit_ms).collect(),
        ),
    ]
}

fn grow(quick: bool) -> Scenario {
    const N: usize = 256;
    let rounds = if quick { 2 } else { 5 };
    let builds = peers();
    let mut ms = vec![Vec::new(); builds.len()];
    for _ in 0..rounds {
        for (k, (_, build)) in builds.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(100));
            let running = Arc::new(AtomicUsize::new(0));
            let gate = Arc::new((Mutex::new(false), Condvar::new()));
            let t = Instant::now();
            let (submit, guard) = build(N);
            for _ in 0..N {
                let r = Arc::clone(&running);
                let g = Arc::clone(&gate);
                submit(Box::new(move || {
                    r.fetch_add(1, Ordering::Release);
                    let (m, c) = &*g;
                    let mut open = m.lock().unwrap();
                    while !*open {
                        open = c.wait(open).unwrap();
                    }
                }));
            }
            wait_for(&running, N);
            ms[k].push(t.elapsed().as_secs_f64() * 1e3);
            {
                let (m, c) = &*gate;
                *m.lock().unwrap() = true;
                c.notify_all();
            }
            drop(submit);
            drop(guard);
        }
    }
    scenario(
        "grow",
        "ms to 256 running",
        false,
        builds.iter().map(|(n, _)| *n).zip(ms).collect(),
    )
}

// ----------------------------------------------------------------------------------------
// idle

/// (CPU ns, context switches) of every thread of this process but the calling one.
fn other_threads_cost() -> (u64, u64) {
    // This thread's id, from /proc (no unsafe gettid call).
    let me = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut cpu = 0;
    let mut switches = 0;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return (0, 0);
    };
    for entry in dir.flatten() {
        if entry.file_name().to_string_lossy() == me {
            continue;
        }
        let p = entry.path();
        let sched = std::fs::read_to_string(p.join("schedstat")).unwrap_or_default();
        cpu += sched
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let status = std::fs::read_to_string(p.join("status")).unwrap_or_default();
        for line in status.lines() {
            if line.starts_with("voluntary_ctxt_switches")
                || line.starts_with("nonvoluntary_ctxt_switches")
            {
                switches += line
                    .split_whitespace()
                    .last()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    (cpu, switches)
}

fn idle(quick: bool) -> Vec<Scenario> {
    const WORKERS: usize = 64;
    let rounds = if quick { 1 } else { 3 };
    let secs = 5;
    let mut cpu = Vec::new();
    let mut wakeups = Vec::new();
    for _ in 0..rounds {
        let pool = Pool::builder()
            .autoscale(Policy {
                min_workers: WORKERS,
                max_workers: WORKERS * 2,
                ..Policy::default()
            })
            .prestart(true)
            .build()
            .expect("valid policy");
        while pool.stats().idle < WORKERS {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(200));
        let (c0, s0) = other_threads_cost();
        std::thread::sleep(Duration::from_secs(secs));
        let (c1, s1) = other_threads_cost();
        cpu.push(c1.saturating_sub(c0) as f64 / 1e6);
        wakeups.push(s1.saturating_sub(s0) as f64);
        drop(pool);
    }
    vec![
        scenario(
            "idle-cpu",
            "process CPU ms per 5 s",
            false,
            vec![("elastic-pool", cpu)],
        ),
        scenario(
            "idle-wakeups",
            "context switches per 5 s",
            false,
            vec![("elastic-pool", wakeups)],
        ),
    ]
}

// ----------------------------------------------------------------------------------------
// signals

/// Lognormal-ish durations (median ~200 µs over 5 decades), as `benches/signals.rs`.
fn values(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            (200e3 * (12.0 * (u - 0.5)).exp()) as u64
        })
        .collect()
}

/// Median µs of `op` over `rounds` rounds, each timed right after 128 tasks of 20 µs ran on
/// `pool` (with every task sampled, about two fresh samples per worker of a 64-worker pool).
fn median_after_fresh_samples<T>(pool: &Pool, rounds: usize, op: impl Fn() -> T) -> f64 {
    let mut v = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let target = pool.stats().completed + 128;
        for _ in 0..128 {
            pool.execute(|| std::thread::sleep(Duration::from_micros(20)))
                .unwrap();
        }
        while pool.stats().completed < target {
            std::thread::yield_now();
        }
        let t = Instant::now();
        black_box(op());
        v.push(t.elapsed().as_nanos() as f64 / 1e3);
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn signals(quick: bool) -> Vec<Scenario> {
    const MASK: usize = 1023;
    let (rounds, records, ticks) = if quick {
        (5, 2_000_000usize, 50usize)
    } else {
        (15, 20_000_000, 300)
    };
    let vals = values(MASK + 1, 0x5EED);
    let mut one = Vec::new();
    let mut two = Vec::new();
    let mut p99 = Vec::new();
    let mut tick = Vec::new();
    let mut quiet = Vec::new();
    let mut logged = Vec::new();
    let mut read = Vec::new();

    let mut full = Snapshot::new();
    let h = Histogram::new();
    for v in values(100_000, 0xC0FFEE) {
        h.record(v);
    }
    h.snapshot_into(&mut full);

    let pool = Pool::builder()
        .autoscale(Policy {
            min_workers: 64,
            // Pinned at 64: a pool the ticks grew would time more shards from run to run.
            max_workers: 64,
            tick_ms: 60_000.0,
            ..Policy::default()
        })
        .prestart(true)
        .build()
        .expect("valid policy");
    // The signal read alone: `metrics()` on a pool without a control tick closes a window
    // (sample logs or merge, delta, quantiles, EWMAs) and sums the exact totals.
    let fixed = Pool::builder()
        .min_workers(64)
        .max_workers(64)
        .prestart(true)
        .build()
        .expect("valid bounds");
    while pool.stats().idle < 64 || fixed.stats().idle < 64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    pool.set_wait_sampling(1);
    fixed.set_wait_sampling(1);
    let log = elastic_pool::sample_log::SampleLog::<{ elastic_pool::sample_log::CAPACITY }>::new();

    for _ in 0..rounds {
        let h = Histogram::new();
        let t = Instant::now();
        for k in 0..records {
            h.record(black_box(vals[k & MASK]));
        }
        one.push(t.elapsed().as_nanos() as f64 / records as f64);

        // What a worker does per sampled wait: the histogram and the sample log (the log is
        // drained now and then, as a tick would, so it never laps).
        let h = Histogram::new();
        let mut cursor = 0;
        log.resync(&mut cursor); // caught up with the previous round
        let t = Instant::now();
        for k in 0..records {
            let v = black_box(vals[k & MASK]);
            log.push(0, h.record_n_in_bucket(v, 1), 1);
            if k % 64 == 63 {
                let _ = log.read_new(&mut cursor, |_, _, _| ());
            }
        }
        logged.push(t.elapsed().as_nanos() as f64 / records as f64);

        let shards = [
            crossbeam_utils::CachePadded::new(Histogram::new()),
            crossbeam_utils::CachePadded::new(Histogram::new()),
        ];
        let start = Barrier::new(2);
        let per: Vec<f64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let (h, start, vals) = (&shards[i], &start, &vals);
                    s.spawn(move || {
                        start.wait();
                        let t = Instant::now();
                        for k in 0..records {
                            h.record(black_box(vals[(k + i * 512) & MASK]));
                        }
                        t.elapsed().as_nanos() as f64 / records as f64
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        two.push(per.into_iter().fold(0.0, f64::max));

        let n = 100_000;
        let t = Instant::now();
        for _ in 0..n {
            black_box(black_box(&full).quantile(black_box(0.99)));
        }
        p99.push(t.elapsed().as_nanos() as f64 / n as f64);

        // Whole ticks after every worker recorded fresh samples, and the signal read alone
        // (`metrics()` on the fixed pool) after the same.
        tick.push(median_after_fresh_samples(&pool, ticks, || pool.tick_now()));
        read.push(median_after_fresh_samples(&fixed, ticks, || {
            fixed.metrics()
        }));
        // And quiet ticks (nothing ran since the last one).
        let mut v: Vec<f64> = (0..ticks)
            .map(|_| {
                let t = Instant::now();
                black_box(pool.tick_now());
                t.elapsed().as_nanos() as f64 / 1e3
            })
            .collect();
        v.sort_by(f64::total_cmp);
        quiet.push(v[v.len() / 2]);
    }
    vec![
        scenario(
            "signals-record-1t",
            "ns/record",
            false,
            vec![("elastic-pool", one)],
        ),
        scenario(
            "signals-record-log",
            "ns/record, histogram + sample log",
            false,
            vec![("elastic-pool", logged)],
        ),
        scenario(
            "signals-record-2t",
            "ns/record",
            false,
            vec![("elastic-pool", two)],
        ),
        scenario(
            "signals-p99",
            "ns per windowed p99",
            false,
            vec![("elastic-pool", p99)],
        ),
        scenario(
            "signals-tick",
            "µs per tick_now, 64 workers, fresh samples",
            false,
            vec![("elastic-pool", tick)],
        ),
        scenario(
            "signals-window",
            "µs per signal read (metrics() closing a window), 64 workers, fresh samples",
            false,
            vec![("elastic-pool", read)],
        ),
        scenario(
            "signals-tick-quiet",
            "µs per tick_now, 64 workers, quiet window",
            false,
            vec![("elastic-pool", quiet)],
        ),
    ]
}

// ----------------------------------------------------------------------------------------
// memory

/// Resident bytes of this process, from /proc/self/statm (0 where unavailable).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn memory(quick: bool) -> Vec<Scenario> {
    const N: usize = 64;
    let rounds = if quick { 1 } else { 3 };
    type Build = fn(usize) -> Box<dyn std::any::Any>;
    let builds: Vec<(&str, Build)> = vec![
        ("elastic-pool", |n| Box::new(fixed_pool(n))),
        ("rusty_pool", |n| {
            let rp = rusty_pool::ThreadPool::new(n, n, Duration::from_secs(60));
            rp.start_core_threads();
            Box::new(rp)
        }),
        ("threadpool", |n| Box::new(threadpool::ThreadPool::new(n))),
        ("rayon", |n| {
            Box::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .expect("rayon pool"),
            )
        }),
        ("tokio-blocking", |n| {
            let rt = tokio_rt(n);
            let b = Arc::new(Barrier::new(n + 1));
            for _ in 0..n {
                let b = Arc::clone(&b);
                drop(rt.handle().spawn_blocking(move || {
                    b.wait();
                }));
            }
            b.wait();
            Box::new(TokioGuard(Some(rt)))
        }),
        ("channel-floor", |n| Box::new(Floor::new(n, 65_536))),
    ];
    // Two pools alive at once, of N and 2N workers: the second's extra N workers price a
    // worker, net of each pool's fixed cost (its queue, say).
    let mut per = vec![Vec::new(); builds.len()];
    for _ in 0..rounds {
        for (k, (_, build)) in builds.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(100));
            let r0 = rss();
            let a = build(N);
            std::thread::sleep(Duration::from_millis(100)); // every thread started and parked
            let r1 = rss();
            let b = build(2 * N);
            std::thread::sleep(Duration::from_millis(100));
            let r2 = rss();
            let d1 = r1.saturating_sub(r0) as f64;
            let d2 = r2.saturating_sub(r1) as f64;
            per[k].push(((d2 - d1) / N as f64).max(0.0));
            drop(b);
            drop(a);
        }
    }
    // The metric state, by construction (signals.rs `SignalState`: six boxed snapshots —
    // cumulative, previous and window for wait and run — and per worker shard two
    // histograms, wait and run, and the sample log beside them; plus the tick's cursor).
    let fixed = 6 * std::mem::size_of::<Snapshot>();
    let worker = 2 * std::mem::size_of::<Histogram>()
        + std::mem::size_of::<elastic_pool::sample_log::SampleLog>()
        + std::mem::size_of::<u64>();
    vec![
        scenario(
            "memory-worker",
            "resident bytes per idle worker",
            false,
            builds.iter().map(|(n, _)| *n).zip(per).collect(),
        ),
        scenario(
            "memory-metrics-fixed",
            "bytes of a pool's fixed metric state",
            false,
            vec![("elastic-pool", vec![fixed as f64])],
        ),
        scenario(
            "memory-metrics-worker",
            "bytes of metric state per worker shard",
            false,
            vec![("elastic-pool", vec![worker as f64])],
        ),
    ]
}
