//! The autoscaler on real threads: it grows under load and shrinks back, swaps policies at
//! run time, rejects invalid ones, records its decisions, and ticks without allocating.
#![cfg(not(loom))]

mod common;
use common::{wait_until, Latch, OpenOnDrop, PATIENCE};
use elastic_pool::policy::{Policy, PolicyError};
use elastic_pool::Pool;
use std::time::Duration;

fn policy() -> Policy {
    Policy {
        min_workers: 1,
        max_workers: 32,
        tick_ms: 50.0,
        scale_down_window_s: 0.5,
        // Smooth over half a second so that a test sees the whole cycle quickly.
        rate_tau_s: 0.5,
        service_tau_s: 0.5,
        keep_alive_s: 60.0,
        ..Policy::default()
    }
}

#[test]
fn grows_under_load_and_shrinks_back() {
    let pool = Pool::builder().autoscale(policy()).build().unwrap();
    assert_eq!(pool.stats().target, 1);
    // About 200 tasks/s of 20 ms sleeps needs ~4 busy workers plus headroom.
    let stop = std::time::Instant::now() + Duration::from_secs(3);
    let mut peak = 0;
    while std::time::Instant::now() < stop {
        for _ in 0..10 {
            pool.execute(|| std::thread::sleep(Duration::from_millis(20)))
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(50)); // the arrival process, not a sync
        peak = peak.max(pool.stats().live);
    }
    assert!(peak >= 4, "peak live {peak}");
    assert!(peak <= 32);
    let grew = pool.decisions().iter().any(|d| d.to > d.from);
    assert!(grew, "{:?}", pool.decisions());
    // Load stops: the controller lowers the target and idle workers retire, well before
    // the 60 s keep-alive.
    assert!(
        wait_until(PATIENCE, || pool.stats().live <= 2),
        "{:?}\n{:#?}",
        pool.stats(),
        pool.decisions().iter().rev().take(3).collect::<Vec<_>>()
    );
    assert!(pool.decisions().iter().any(|d| d.to < d.from));
    let s = pool.stats();
    assert!(s.min <= s.live && s.live <= s.max);
}

#[test]
fn idle_workers_at_the_target_do_not_expire_after_the_keep_alive() {
    // One tick a minute: the target stays where `set_target` puts it for the test.
    let pool = Pool::builder()
        .autoscale(Policy {
            tick_ms: 60_000.0,
            keep_alive_s: 0.05,
            ..policy()
        })
        .build()
        .unwrap();
    assert_eq!(pool.set_target(4), 4);
    let hold = |pool: &Pool, n: usize| {
        let latch = Latch::new();
        for _ in 0..n {
            let l = latch.clone();
            pool.execute(move || l.wait()).unwrap();
        }
        assert!(wait_until(PATIENCE, || pool.stats().live == n));
        latch.open();
        assert!(wait_until(PATIENCE, || pool.stats().idle == n));
    };
    hold(&pool, 4);
    // A plain pool with the same keep-alive, idle from later on: once its surplus workers
    // have expired, the autoscaled pool's have been idle longer than the keep-alive too.
    let plain = Pool::builder()
        .min_workers(1)
        .max_workers(4)
        .keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    hold(&plain, 4);
    assert!(wait_until(PATIENCE, || plain.stats().live == 1));
    let s = pool.stats();
    assert_eq!((s.target, s.live, s.retired), (4, 4, 0), "{s:?}");
}

#[test]
fn a_standing_backlog_short_of_a_burst_grows_one_worker_per_grace() {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    // One tick a minute: after the first tick (100 ms in) the target, the ceiling and the
    // burst depth stay where it put them for the rest of the test.
    let p = Policy {
        min_workers: 4,
        tick_ms: 60_000.0,
        ..policy()
    };
    let grace =
        Duration::from_secs_f64(p.target_p99_wait_ms / 1000.0 * elastic_pool::SPAWN_GRACE_FRACTION);
    let starts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = Arc::clone(&starts);
    let pool = Pool::builder()
        .autoscale(p)
        .spawn_hook(move || {
            log.lock().unwrap().push(Instant::now());
            Ok(())
        })
        .build()
        .unwrap();
    assert!(wait_until(PATIENCE, || !pool.decisions().is_empty()));
    let d = pool.decisions()[0];
    // A backlog above the target that is not burst-deep and fits under the ceiling.
    let backlog = (d.burst_queue - 1).min(d.ceiling - d.to);
    assert!(
        backlog >= 2,
        "the first decision leaves no room for the test: {d:?}"
    );
    let latch = Latch::new();
    let _open = OpenOnDrop(latch.clone());
    let block = |n: usize| {
        for _ in 0..n {
            let l = latch.clone();
            pool.execute(move || l.wait()).unwrap();
        }
    };
    // The target's workers all busy: they start at once (below the target there is no grace).
    block(d.to);
    assert!(wait_until(PATIENCE, || {
        let s = pool.stats();
        s.live == d.to && s.busy == d.to
    }));
    let before = starts.lock().unwrap().len();
    let queued_at = Instant::now();
    block(backlog);
    assert!(
        wait_until(PATIENCE, || pool.stats().busy == d.to + backlog),
        "{:?}",
        pool.stats()
    );
    let s = pool.stats();
    assert_eq!((s.live, s.target), (d.to + backlog, d.to), "{s:?}");
    let grown = starts.lock().unwrap()[before..].to_vec();
    assert_eq!(grown.len(), backlog, "one thread per queued task, no more");
    // Each worker waited its own grace: the first one from the queueing, each next one
    // from the start of the one before.
    let mut prev = queued_at;
    for (i, &t) in grown.iter().enumerate() {
        assert!(
            t.duration_since(prev) >= grace,
            "worker {i} started {:?} after the previous event, inside the {grace:?} grace",
            t.duration_since(prev)
        );
        prev = t;
    }
}

#[test]
fn invalid_policies_are_rejected_naming_the_field_and_the_old_one_stays() {
    let pool = Pool::builder().autoscale(policy()).build().unwrap();
    let bad = Policy {
        tick_ms: 0.0,
        ..policy()
    };
    let e = pool.set_policy(bad).unwrap_err();
    assert_eq!(e.field(), Some("tick_ms"), "{e}");
    let bad = Policy {
        min_workers: 9,
        max_workers: 3,
        ..policy()
    };
    assert_eq!(
        pool.set_policy(bad).unwrap_err().field(),
        Some("min_workers")
    );
    assert_eq!(pool.policy().unwrap().tick_ms, 50.0);
    let e = Pool::builder()
        .autoscale(Policy {
            target_p99_wait_ms: 0.0,
            ..policy()
        })
        .build()
        .unwrap_err();
    assert_eq!(e.field, "autoscale");
    assert!(e.reason.contains("target_p99_wait_ms"), "{e}");
    let plain = Pool::builder().build().unwrap();
    assert!(matches!(
        plain.set_policy(policy()),
        Err(PolicyError::NotAutoscaled)
    ));
}

#[test]
fn a_policy_swap_applies_its_bounds_at_once_and_the_rest_at_the_next_tick() {
    let pool = Pool::builder().autoscale(policy()).build().unwrap();
    pool.set_policy(Policy {
        min_workers: 3,
        max_workers: 5,
        ..policy()
    })
    .unwrap();
    let s = pool.stats();
    assert_eq!((s.min, s.max), (3, 5));
    assert!(wait_until(PATIENCE, || pool.stats().live >= 3));
    let d = pool.tick_now().unwrap();
    assert!((3..=5).contains(&d.to), "{d:?}");
}

#[test]
fn decisions_carry_the_signals_behind_them() {
    let pool = Pool::builder().autoscale(policy()).build().unwrap();
    for _ in 0..200 {
        pool.execute(|| std::thread::sleep(Duration::from_millis(5)))
            .unwrap();
    }
    assert!(wait_until(PATIENCE, || pool
        .decisions()
        .iter()
        .any(|d| d.changed())));
    let d = pool.decisions().into_iter().find(|d| d.changed()).unwrap();
    assert!(d.to != d.from);
    assert!(!d.rule.as_str().is_empty());
    assert!(d.lambda >= 0.0 && d.utilisation >= 0.0);
}
