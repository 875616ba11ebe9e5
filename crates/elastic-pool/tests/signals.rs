//! The pool's signals: exact counts under sampling, windowed quantiles that forget old
//! spikes, busy-time utilisation, and per-tenant counters.
#![cfg(not(loom))]

mod common;
use common::{hold_workers, wait_until, Latch, OpenOnDrop, PATIENCE};
use elastic_pool::histogram::Snapshot;
use elastic_pool::Pool;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn counts_stay_exact_under_sampling_with_concurrent_submitters() {
    let pool = Pool::builder()
        .max_workers(3)
        .wait_sampling(7)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..7_000 {
                    let r = Arc::clone(&ran);
                    pool.execute(move || {
                        r.fetch_add(1, SeqCst);
                    })
                    .unwrap();
                }
            });
        }
    });
    pool.shutdown();
    let st = pool.stats();
    assert_eq!(st.submitted, 28_000);
    assert_eq!(st.completed, 28_000);
    assert_eq!(ran.load(SeqCst), 28_000);
    // Each of the four submitting threads stamps exactly one task in seven.
    assert_eq!(st.wait_samples, 4 * 1_000);
    assert_eq!(st.run_samples, 4 * 1_000);
}

#[test]
fn the_window_reports_recent_waits_not_all_time() {
    let pool = Pool::builder()
        .max_workers(1)
        .wait_sampling(1)
        .build()
        .unwrap();
    // A backlog behind one blocked worker: these tasks wait ≥ 30 ms.
    let latch = Latch::new();
    let l = latch.clone();
    pool.execute(move || l.wait()).unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().busy == 1));
    for _ in 0..50 {
        pool.execute(|| ()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(30)); // the waiting being measured, not a sync
    latch.open();
    assert!(wait_until(PATIENCE, || pool.stats().completed == 51));
    let spike = pool.metrics();
    let p99 = spike.window.wait.p99.unwrap();
    assert!(p99 >= Duration::from_millis(25), "spike p99 {p99:?}");
    assert_eq!(spike.window.completions, 51);
    assert_eq!(spike.window.wait.samples, 51);
    // The next window holds only quick tasks: the spike is gone from it.
    for _ in 0..50 {
        pool.spawn(|| ()).unwrap().join().unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().completed == 101));
    let calm = pool.metrics();
    assert_eq!(calm.window.completions, 50);
    let p99 = calm.window.wait.p99.unwrap();
    assert!(p99 < Duration::from_millis(10), "calm p99 {p99:?}");
    // The peak-EWMA still remembers the spike, decaying.
    assert!(calm.smoothed.wait_p99.unwrap() > p99);
    assert_eq!(calm.totals.completed, 101);
}

#[test]
fn a_window_reports_arrivals_depth_idle_and_every_quantile() {
    // Two workers held by a latch and eight tasks queued behind them.
    let pool = Pool::builder()
        .min_workers(2)
        .max_workers(2)
        .prestart(true)
        .wait_sampling(1)
        .build()
        .unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().idle == 2));
    let opened = pool.metrics().window; // closes the start-up window
    assert_eq!((opened.arrivals, opened.live, opened.idle), (0, 2, 2));
    let latch = Latch::new();
    let _open = OpenOnDrop(latch.clone());
    // Once both have started, both waits are recorded.
    hold_workers(&pool, 2, &latch);
    for _ in 0..8 {
        pool.execute(|| ()).unwrap();
    }
    let held = pool.metrics().window;
    assert_eq!(held.arrivals, 10);
    assert_eq!(held.completions, 0);
    assert_eq!(held.dequeued, 2);
    assert_eq!(held.queue_depth, 8);
    assert_eq!((held.live, held.idle), (2, 0));
    let rate = held.arrivals as f64 / held.duration.as_secs_f64();
    assert!((held.arrival_rate - rate).abs() <= 1e-9 * rate, "{held:?}");
    assert_eq!(held.wait.samples, 2, "the two dequeued tasks' waits");

    std::thread::sleep(Duration::from_millis(20)); // the waiting being measured, not a sync
    latch.open();
    assert!(wait_until(PATIENCE, || {
        let s = pool.stats();
        s.completed == 10 && s.idle == 2
    }));
    let done = pool.metrics().window;
    assert_eq!((done.arrivals, done.completions, done.dequeued), (0, 10, 8));
    assert_eq!((done.queue_depth, done.live, done.idle), (0, 2, 2));
    assert_eq!(done.arrival_rate, 0.0);
    // The eight queued tasks each waited at least the 20 ms hold, so every quantile of this
    // window is at least that, less the histogram's stated error.
    let q = done.wait;
    assert_eq!(q.samples, 8);
    let floor =
        Duration::from_millis(20).mul_f64(1.0 - elastic_pool::histogram::MAX_RELATIVE_ERROR);
    let all = [q.p50, q.p90, q.p99, q.p999].map(Option::unwrap);
    assert!(
        all.windows(2).all(|w| w[0] <= w[1]),
        "quantiles in order: {q:?}"
    );
    assert!(all[0] >= floor, "{q:?}");
    assert!(q.mean.unwrap() >= floor, "{q:?}");
    assert_eq!(
        done.service.samples, 10,
        "every run time, the latched ones included"
    );
}

/// Runs `n` tasks of `task` one at a time on `pool` (so a single worker records them all) and
/// waits until their run times are recorded.
fn run_each(pool: &Pool, n: usize, task: fn()) {
    let before = pool.stats().run_samples;
    for _ in 0..n {
        pool.spawn(task).unwrap().join().unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().run_samples == before + n as u64));
}

#[test]
fn windows_agree_whether_read_from_sample_logs_or_merged() {
    // One worker, every task sampled: a task writes two sample log entries, so 20 tasks fit
    // the log (read entry by entry) and 300 overrun it (the window merges the histograms).
    let pool = Pool::builder()
        .max_workers(1)
        .wait_sampling(1)
        .build()
        .unwrap();
    let quick: fn() = || ();
    let slow: fn() = || std::thread::sleep(Duration::from_millis(3));
    let ms = Duration::from_millis;

    run_each(&pool, 300, quick);
    let a = pool.metrics().window;
    assert!(
        a.merged,
        "300 tasks overrun a {}-entry log",
        elastic_pool::sample_log::CAPACITY
    );
    assert_eq!(a.service.samples, 300);
    // The 90th percentile, not the 99th: on a loaded machine a few empty tasks are preempted
    // between their clock reads and take milliseconds.
    assert!(a.service.p90.unwrap() < ms(2), "{a:?}");

    run_each(&pool, 20, slow);
    let b = pool.metrics().window;
    assert!(!b.merged, "20 tasks fit the log");
    assert_eq!(b.service.samples, 20);
    // Only this window's tasks: every one slept 3 ms (none of the 300 quick ones).
    let p50 = b.service.p50.unwrap();
    assert!(p50 >= ms(2) && p50 < ms(50), "{b:?}");
    let mean = b.service.mean.unwrap();
    assert!(mean >= ms(3) && mean < ms(50), "{b:?}");

    run_each(&pool, 40, quick);
    let c = pool.metrics().window;
    assert!(!c.merged);
    assert_eq!(c.service.samples, 40);
    // Had the twenty 3 ms tasks leaked into this window, a third of it would take ≥ 3 ms.
    assert!(
        c.service.p90.unwrap() < ms(2),
        "the 3 ms tasks stayed in their window: {c:?}"
    );

    // A merged window after log-read ones: its difference is taken from the cumulative
    // snapshot the log windows kept in step, so B's slow tasks do not come back.
    run_each(&pool, 300, quick);
    let d = pool.metrics().window;
    assert!(d.merged);
    assert_eq!(d.service.samples, 300);
    // B's twenty 3 ms tasks would be 6 % of this window, above its 99th percentile. The
    // bound leaves room for a few empty tasks preempted on a loaded machine.
    assert!(
        d.service.p99.unwrap() < Duration::from_micros(2_500),
        "{d:?}"
    );
    let mean = d.service.mean.unwrap();
    assert!(mean < ms(1), "{d:?}");

    // And the log path resumes after a merge.
    run_each(&pool, 5, slow);
    let e = pool.metrics().window;
    assert!(!e.merged);
    assert_eq!((e.service.samples, e.wait.samples), (5, 5));
    assert!(e.service.p50.unwrap() >= ms(2), "{e:?}");
}

#[test]
fn busy_time_gives_mean_busy_workers() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    let _ = pool.metrics(); // open a window
    let latch = Latch::new();
    for _ in 0..2 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().busy == 2));
    std::thread::sleep(Duration::from_millis(100)); // the busy time being measured
    let w = pool.metrics().window;
    // Two workers blocked for the whole window, minus start-up: close to 2 busy workers.
    assert!(w.busy_workers > 1.0 && w.busy_workers <= 2.05, "{w:?}");
    assert!(w.utilisation > 0.5, "{w:?}");
    assert_eq!(w.live, 2);
    latch.open();
}

#[test]
fn tenant_keys_count_their_own_tasks() {
    let pool = Pool::builder()
        .max_workers(2)
        .queue_capacity(4)
        .wait_sampling(1)
        .max_keys(2)
        .build()
        .unwrap();
    let a = pool.key("tenant-a").unwrap();
    let b = pool.key("tenant-b").unwrap();
    assert_eq!(
        pool.key("tenant-a").unwrap(),
        a,
        "registering twice finds the same key"
    );
    assert_eq!((a.index(), b.index()), (0, 1));
    assert_eq!(pool.key("tenant-c").unwrap_err().capacity, 2);
    assert_eq!(pool.key_name(b).as_deref(), Some("tenant-b"));
    for _ in 0..30 {
        pool.execute_keyed(a, || ()).unwrap();
    }
    for _ in 0..10 {
        pool.execute_keyed(b, || ()).unwrap();
    }
    // Overload b: two blocked workers and a full queue.
    let latch = Latch::new();
    for _ in 0..2 {
        let l = latch.clone();
        pool.execute(move || l.wait()).unwrap();
    }
    assert!(wait_until(PATIENCE, || pool.stats().busy == 2));
    let mut refused = 0;
    for _ in 0..10 {
        if pool.try_execute_keyed(b, || ()).is_err() {
            refused += 1;
        }
    }
    assert!(refused >= 6, "queue of 4 takes at most 4");
    latch.open();
    pool.shutdown();
    let mut snap = Snapshot::new();
    let sa = pool.key_stats(a, &mut snap).unwrap();
    assert_eq!((sa.submitted, sa.completed, sa.rejected), (30, 30, 0));
    assert_eq!(snap.count(), 30, "every keyed wait was sampled");
    let mut seen = Vec::new();
    pool.for_each_key(|k, _| seen.push(k));
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].submitted, 10 + (10 - refused));
    assert_eq!(seen[1].completed, seen[1].submitted);
    assert_eq!(seen[1].rejected, refused);
    let sb = pool.key_stats(b, &mut snap).unwrap();
    assert_eq!(sb, seen[1]);
    assert_eq!(
        snap.count(),
        sb.submitted,
        "b's histogram holds its accepted tasks' waits"
    );
}

/// Runs `tasks` of `task` on a fresh pool that samples every task, and returns the probes'
/// CPU share (every window until at least 8 tasks were probed).
#[cfg(target_os = "linux")]
fn probed_cpu_share(task: fn()) -> f64 {
    let pool = Pool::builder()
        .min_workers(2)
        .max_workers(2)
        .wait_sampling(1)
        .build()
        .unwrap();
    let (mut probes, mut cpu, mut blocked) = (0u64, 0.0, 0.0);
    let mut submitted = 0u64;
    while probes < 8 {
        assert!(submitted < 10_000, "too few probes: {probes}");
        for _ in 0..16 {
            pool.execute(task).unwrap();
        }
        submitted += 16;
        assert!(wait_until(PATIENCE, || pool.stats().completed == submitted));
        let w = pool.metrics().window;
        assert!(w.cpu_probes <= w.completions, "{w:?}");
        probes += w.cpu_probes;
        cpu += w.cpu_probe_cpu_seconds;
        blocked += w.cpu_probe_blocked_seconds;
        if w.cpu_probes > 0 {
            let share = w.cpu_share().unwrap();
            assert!((0.0..=1.0).contains(&share));
        }
    }
    // One in four sampled tasks per worker, after each worker's first.
    assert!(
        probes * 2 <= submitted,
        "{probes} probes for {submitted} tasks"
    );
    cpu / (cpu + blocked)
}

/// Spinning tasks count as CPU work and sleeping ones as blocking, whatever the machine's
/// load does to their wall time (a spin task never blocks, so it counts whole).
#[test]
#[cfg(target_os = "linux")]
fn probes_tell_cpu_work_from_blocking_work() {
    let spin = probed_cpu_share(|| {
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_micros(500) {
            std::hint::spin_loop();
        }
    });
    assert!(spin > 0.9, "spin tasks: CPU share {spin}");
    let sleep = probed_cpu_share(|| std::thread::sleep(Duration::from_micros(500)));
    assert!(sleep < 0.3, "sleep tasks: CPU share {sleep}");
}
