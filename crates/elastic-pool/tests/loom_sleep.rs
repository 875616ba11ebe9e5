//! loom models of the park/wake protocol (`src/sleep.rs`) and of retirement racing submit.
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p elastic-pool --release --test loom_sleep`
//!
//! The queue is modelled by an atomic count of queued tasks with the access pattern of a
//! lock-free channel: a push is a release increment, and a pop first *loads* the count
//! (which may be stale) and only then claims a task with a compare-and-swap. A mutex-based
//! stand-in would hide a missing fence, because the lock order alone would publish the
//! worker's registration. The idle stack, its counter, the fences and the thread parking
//! are the crate's own code. loom explores every
//! interleaving (and every allowed reordering of the atomics) and fails the test if all
//! threads end up parked: that is a lost wake-up.
#![cfg(loom)]

use elastic_pool::__loom::{Sleeper, Sleepers, Wake};
use loom::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use loom::sync::Arc;

struct Model {
    queued: AtomicUsize,
    sleepers: Sleepers,
    ran: AtomicUsize,
}

impl Model {
    fn new() -> Arc<Self> {
        Arc::new(Model {
            queued: AtomicUsize::new(0),
            sleepers: Sleepers::new(),
            ran: AtomicUsize::new(0),
        })
    }
    fn pop(&self) -> Option<()> {
        let mut n = self.queued.load(Relaxed);
        while n > 0 {
            match self.queued.compare_exchange(n, n - 1, Acquire, Relaxed) {
                Ok(_) => return Some(()),
                Err(now) => n = now,
            }
        }
        None
    }
    fn submit(&self, _task: u32) -> bool {
        self.queued.fetch_add(1, Release);
        self.sleepers.notify_one()
    }
    /// The worker loop of `src/worker.rs`, minus spinning and timeouts: run until `want`
    /// tasks have run in total.
    fn work(&self, want: usize) {
        let me = Sleeper::for_current_thread();
        loop {
            if self.ran.load(SeqCst) >= want {
                return;
            }
            if self.pop().is_some() {
                self.ran.fetch_add(1, SeqCst);
                continue;
            }
            self.sleepers.register(&me);
            if self.pop().is_some() {
                let _ = self.sleepers.cancel(&me);
                self.ran.fetch_add(1, SeqCst);
                continue;
            }
            if self.ran.load(SeqCst) >= want {
                let _ = self.sleepers.cancel(&me);
                return;
            }
            let _ = self.sleepers.wait(&me, None);
        }
    }
}

/// One worker, one submitter: the task always runs (the worker is never left parked with
/// a task in the queue).
#[test]
fn submit_never_loses_the_wake_up() {
    loom::model(|| {
        let m = Model::new();
        let w = {
            let m = Arc::clone(&m);
            loom::thread::spawn(move || m.work(1))
        };
        m.submit(1);
        w.join().unwrap();
        assert_eq!(m.ran.load(SeqCst), 1);
    });
}

/// Two workers, two tasks from two submitters: both run, and each notify pops at most one
/// sleeper (no thundering herd), with no deadlock.
#[test]
fn two_workers_two_submitters() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(|| {
        let m = Model::new();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                loom::thread::spawn(move || m.work(2))
            })
            .collect();
        let s = {
            let m = Arc::clone(&m);
            loom::thread::spawn(move || {
                m.submit(1);
            })
        };
        m.submit(2);
        s.join().unwrap();
        // Both tasks run; then release whoever is still parked.
        while m.ran.load(SeqCst) < 2 {
            loom::thread::yield_now();
        }
        m.sleepers.notify_all();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(m.ran.load(SeqCst), 2);
        assert_eq!(m.sleepers.idle(), 0);
    });
}

/// Shrinking races a submit: the parked worker is either asked to retire or woken for the
/// task. If it retires, the submitter's `notify_one` reported that it woke nobody, which is
/// exactly when the real pool asks the control thread for a worker. So a queued task is
/// never stranded: it runs, or a spawn is requested.
#[test]
fn retire_racing_submit_never_strands_a_task() {
    loom::model(|| {
        let m = Model::new();
        let retired = Arc::new(AtomicBool::new(false));
        let registered = Arc::new(AtomicBool::new(false));
        let w = {
            let (m, retired, registered) = (
                Arc::clone(&m),
                Arc::clone(&retired),
                Arc::clone(&registered),
            );
            loom::thread::spawn(move || {
                let me = Sleeper::for_current_thread();
                m.sleepers.register(&me);
                registered.store(true, SeqCst);
                if m.pop().is_some() {
                    let _ = m.sleepers.cancel(&me);
                    m.ran.fetch_add(1, SeqCst);
                    return;
                }
                match m.sleepers.wait(&me, None) {
                    Wake::Retire => retired.store(true, SeqCst),
                    Wake::Notified => {
                        if m.pop().is_some() {
                            m.ran.fetch_add(1, SeqCst);
                        }
                    }
                    Wake::TimedOut => unreachable!("no timed park under loom"),
                }
            })
        };
        let resizer = {
            let (m, registered) = (Arc::clone(&m), Arc::clone(&registered));
            loom::thread::spawn(move || {
                if registered.load(SeqCst) {
                    m.sleepers.retire_coldest(1);
                }
            })
        };
        let woke = m.submit(7);
        resizer.join().unwrap();
        if !woke && !retired.load(SeqCst) && m.ran.load(SeqCst) == 0 {
            // Nobody popped the worker: wake it the way shutdown would.
            m.sleepers.notify_all();
        }
        w.join().unwrap();
        let ran = m.ran.load(SeqCst);
        let retired = retired.load(SeqCst);
        // A worker popped for retirement cannot also be claimed by the submitter ...
        assert!(!(retired && woke), "one sleeper popped twice");
        // ... and a successful notify always leads to the task being run. When notify
        // fails, the real pool asks the control thread for a worker (`request_spawn`).
        if woke {
            assert_eq!(ran, 1, "woken worker did not run the task");
        }
    });
}
