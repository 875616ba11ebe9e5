//! Property: under concurrent submits of every kind, resizes and a shutdown racing them,
//! every task runs exactly once — by a worker, or by the test after the pool handed it back
//! (rejected, or returned unrun by `shutdown_now`) — and every closure is dropped.
#![cfg(not(loom))]

use elastic_pool::Pool;
use proptest::prelude::*;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Op {
    Execute,
    TryExecute,
    ExecuteTimeout,
    Spawn,
    Batch(u8),
    SetTarget(u8),
    SetBounds(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Execute),
        4 => Just(Op::TryExecute),
        2 => Just(Op::ExecuteTimeout),
        2 => Just(Op::Spawn),
        2 => (1u8..20).prop_map(Op::Batch),
        1 => (0u8..6).prop_map(Op::SetTarget),
        1 => (0u8..3, 1u8..6).prop_map(|(a, b)| Op::SetBounds(a, b)),
    ]
}

struct Tracker {
    ran: Vec<AtomicU32>,
    next: AtomicUsize,
    dropped: AtomicUsize,
}

/// Counts its own drop, so a leaked closure shows up.
struct DropCount(Arc<Tracker>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, SeqCst);
    }
}

fn job(t: &Arc<Tracker>) -> impl FnOnce() + Send + 'static {
    let id = t.next.fetch_add(1, SeqCst);
    let guard = DropCount(Arc::clone(t));
    let t = Arc::clone(t);
    move || {
        let _g = guard;
        t.ran[id].fetch_add(1, SeqCst);
    }
}

fn run_ops(pool: &Pool, t: &Arc<Tracker>, ops: &[Op]) {
    let mut handles = Vec::new();
    for &o in ops {
        match o {
            Op::Execute => {
                if let Err(e) = pool.execute(job(t)) {
                    e.into_inner()()
                }
            }
            Op::TryExecute => {
                if let Err(e) = pool.try_execute(job(t)) {
                    e.into_inner()()
                }
            }
            Op::ExecuteTimeout => {
                if let Err(e) = pool.execute_timeout(job(t), Duration::from_millis(1)) {
                    e.into_inner()()
                }
            }
            Op::Spawn => match pool.spawn(job(t)) {
                Ok(h) => handles.push(h),
                Err(e) => e.into_inner()(),
            },
            Op::Batch(k) => {
                let jobs: Vec<_> = (0..k).map(|_| job(t)).collect();
                if let Err(e) = pool.execute_batch(jobs) {
                    e.into_inner().into_iter().for_each(|j| j());
                }
            }
            Op::SetTarget(n) => {
                pool.set_target(n as usize);
            }
            Op::SetBounds(a, b) => {
                let _ = pool.set_bounds(a as usize, (a.max(b)) as usize);
            }
        }
    }
    // A handle resolves to a value or to Cancelled (returned by shutdown_now); never hangs.
    for h in handles {
        let _ = h.join();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_task_is_lost_or_run_twice(
        a in proptest::collection::vec(op(), 1..60),
        b in proptest::collection::vec(op(), 1..60),
        shutdown_after in 0usize..80,
        abrupt in any::<bool>(),
        cap in 1usize..16,
    ) {
        let t = Arc::new(Tracker {
            ran: (0..4000).map(|_| AtomicU32::new(0)).collect(),
            next: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        });
        let pool = Pool::builder()
            .max_workers(4)
            .queue_capacity(cap)
            .keep_alive(Duration::from_millis(5))
            .build()
            .unwrap();
        let start = Arc::new(Barrier::new(3));
        let threads: Vec<_> = [a, b]
            .into_iter()
            .map(|ops| {
                let (p, t, s) = (pool.clone(), Arc::clone(&t), Arc::clone(&start));
                std::thread::spawn(move || {
                    s.wait();
                    run_ops(&p, &t, &ops)
                })
            })
            .collect();
        start.wait();
        // Race the shutdown against the submitters.
        for _ in 0..shutdown_after {
            std::thread::yield_now();
        }
        let returned = if abrupt { pool.shutdown_now() } else { pool.shutdown(); Vec::new() };
        let n_returned = returned.len() as u64;
        for j in returned {
            j.run();
        }
        for th in threads {
            th.join().unwrap();
        }
        let created = t.next.load(SeqCst);
        for (id, r) in t.ran.iter().enumerate().take(created) {
            prop_assert_eq!(r.load(SeqCst), 1, "task {} ran {} times", id, r.load(SeqCst));
        }
        let s = pool.stats();
        prop_assert_eq!(s.submitted, s.completed + n_returned, "{:?}", s);
        prop_assert_eq!(s.queued, 0);
        prop_assert_eq!(s.live, 0);
        drop(pool);
        prop_assert_eq!(t.dropped.load(SeqCst), created, "every closure was dropped");
    }
}
