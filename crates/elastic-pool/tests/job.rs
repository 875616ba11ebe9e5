//! Jobs of the closure pool: small closures are stored inline, others boxed, and either way
//! every closure is dropped exactly once — run, refused and handed back, drained by
//! `shutdown_now` and run or dropped later (on another thread), or panicking.
//!
//! Closures of several sizes are used: inline-sized (one to three words), boxed-sized
//! (larger than the inline storage), over-aligned (16 and 64 bytes, boxed), and zero-sized.
//! A counting global allocator (thread-local count) checks which of them allocate.
#![cfg(not(loom))]

mod common;

use common::{wait_until, Latch, PATIENCE};
use elastic_pool::{Job, JoinError, Pool, SubmitError, SubmitTimeoutError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ----- a thread-local allocation counter ----------------------------------------------

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::allocations_in;

// ----- drop-counted captures ------------------------------------------------------------

/// How often the closures of one test ran and were dropped.
#[derive(Default)]
struct Counts {
    ran: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counts {
    fn new() -> Arc<Counts> {
        Arc::default()
    }
    fn ran(&self) -> usize {
        self.ran.load(SeqCst)
    }
    fn dropped(&self) -> usize {
        self.dropped.load(SeqCst)
    }
}

/// Counts its drop; one word.
struct Guard(Arc<Counts>);

impl Guard {
    fn hit(&self) {
        self.0.ran.fetch_add(1, SeqCst);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, SeqCst);
    }
}

#[repr(align(16))]
struct Align16(Guard);

#[repr(align(64))]
struct Align64(Guard);

fn word() -> usize {
    std::mem::size_of::<usize>()
}

/// One word: the guard alone.
fn one_word(c: &Arc<Counts>) -> impl FnOnce() + Send + 'static {
    let g = Guard(Arc::clone(c));
    move || g.hit()
}

/// Three words: the most the inline storage holds.
fn three_words(c: &Arc<Counts>) -> impl FnOnce() + Send + 'static {
    let g = Guard(Arc::clone(c));
    let pad = [7usize; 2];
    move || {
        assert_eq!(pad, [7, 7]);
        g.hit()
    }
}

/// Nine words: boxed.
fn nine_words(c: &Arc<Counts>) -> impl FnOnce() + Send + 'static {
    let g = Guard(Arc::clone(c));
    let pad = [7usize; 8];
    move || {
        assert!(pad.iter().all(|&p| p == 7));
        g.hit()
    }
}

/// Aligned to 16 (more than a word on every target this builds for): boxed.
fn align16(c: &Arc<Counts>) -> impl FnOnce() + Send + 'static {
    let g = Align16(Guard(Arc::clone(c)));
    move || {
        assert_eq!(&g as *const Align16 as usize % 16, 0, "misaligned capture");
        g.0.hit()
    }
}

/// Aligned to 64: boxed.
fn align64(c: &Arc<Counts>) -> impl FnOnce() + Send + 'static {
    let g = Align64(Guard(Arc::clone(c)));
    move || {
        assert_eq!(&g as *const Align64 as usize % 64, 0, "misaligned capture");
        g.0.hit()
    }
}

/// Makes one closure per kind; each kind reports its size class.
type Make = fn(&Arc<Counts>) -> Box<dyn FnOnce() + Send>;

fn kinds() -> Vec<(&'static str, Make)> {
    vec![
        ("one word", |c| Box::new(one_word(c))),
        ("three words", |c| Box::new(three_words(c))),
        ("nine words", |c| Box::new(nine_words(c))),
        ("align 16", |c| Box::new(align16(c))),
        ("align 64", |c| Box::new(align64(c))),
    ]
}

#[test]
fn the_closures_have_the_sizes_the_tests_claim() {
    let c = Counts::new();
    let fs = (
        one_word(&c),
        three_words(&c),
        nine_words(&c),
        align16(&c),
        align64(&c),
    );
    assert_eq!(std::mem::size_of_val(&fs.0), word());
    assert_eq!(std::mem::size_of_val(&fs.1), 3 * word());
    assert_eq!(std::mem::size_of_val(&fs.2), 9 * word());
    assert_eq!(std::mem::align_of_val(&fs.3), 16);
    assert_eq!(std::mem::align_of_val(&fs.4), 64);
    drop(fs);
    assert_eq!(c.dropped(), 5);
}

/// A pool with one worker, and that worker held on a latch (so submitted jobs stay queued
/// until the latch opens).
fn held_pool(queue: usize) -> (Pool, Latch) {
    let pool = Pool::builder()
        .max_workers(1)
        .queue_capacity(queue)
        .build()
        .unwrap();
    let latch = Latch::new();
    let l = latch.clone();
    pool.execute(move || l.wait()).unwrap();
    assert!(wait_until(PATIENCE, || pool.stats().busy == 1));
    (pool, latch)
}

// ----- allocation: inline or boxed --------------------------------------------------------

#[test]
fn inline_sized_closures_are_submitted_without_allocating() {
    let (pool, latch) = held_pool(64);
    let c = Counts::new();
    // Warm up this thread's submit path (thread-local slots) first.
    pool.execute(one_word(&c)).unwrap();
    let ((), n) = allocations_in(|| pool.execute(one_word(&c)).unwrap());
    assert_eq!(n, 0, "a one-word closure was boxed");
    let ((), n) = allocations_in(|| pool.execute(three_words(&c)).unwrap());
    assert_eq!(n, 0, "a three-word closure was boxed");
    let zst = || ();
    let ((), n) = allocations_in(|| pool.execute(zst).unwrap());
    assert_eq!(n, 0, "a zero-sized closure was boxed");
    // Larger or over-aligned closures are boxed: one allocation each.
    let ((), n) = allocations_in(|| pool.execute(nine_words(&c)).unwrap());
    assert_eq!(n, 1);
    let ((), n) = allocations_in(|| pool.execute(align16(&c)).unwrap());
    assert_eq!(n, 1);
    let ((), n) = allocations_in(|| pool.execute(align64(&c)).unwrap());
    assert_eq!(n, 1);
    latch.open();
    pool.shutdown();
    assert_eq!((c.ran(), c.dropped()), (6, 6));
}

// ----- run --------------------------------------------------------------------------------

#[test]
fn every_kind_runs_once_and_is_dropped_once() {
    let pool = Pool::builder().max_workers(2).build().unwrap();
    for (name, make) in kinds() {
        let c = Counts::new();
        for _ in 0..100 {
            // Unboxed, so the pool sees the closure's own type and size.
            match name {
                "one word" => pool.execute(one_word(&c)).unwrap(),
                "three words" => pool.execute(three_words(&c)).unwrap(),
                "nine words" => pool.execute(nine_words(&c)).unwrap(),
                "align 16" => pool.execute(align16(&c)).unwrap(),
                "align 64" => pool.execute(align64(&c)).unwrap(),
                _ => unreachable!(),
            }
            pool.execute(make(&c)).unwrap();
        }
        assert!(
            wait_until(PATIENCE, || c.dropped() == 200),
            "{name}: dropped {}",
            c.dropped()
        );
        assert_eq!(c.ran(), 200, "{name}");
    }
    pool.shutdown();
    assert_eq!(pool.stats().panicked, 0);
}

/// A zero-sized value that counts its drops in a static (it has no room for an `Arc`).
static ZST_DROPS: AtomicUsize = AtomicUsize::new(0);
static ZST_RUNS: AtomicUsize = AtomicUsize::new(0);

struct ZstGuard;

impl Drop for ZstGuard {
    fn drop(&mut self) {
        ZST_DROPS.fetch_add(1, SeqCst);
    }
}

#[test]
fn zero_sized_closures_run_and_drop_once_on_every_path() {
    let zst = || {
        let g = ZstGuard;
        move || {
            let _g = g;
            ZST_RUNS.fetch_add(1, SeqCst);
        }
    };
    let first = zst();
    assert_eq!(std::mem::size_of_val(&first), 0);
    let (pool, latch) = held_pool(64);
    pool.execute(first).unwrap();
    for _ in 1..10 {
        pool.execute(zst()).unwrap();
    }
    let h = pool.spawn(|| ZstGuard).unwrap();
    let p = pool.clone();
    let shut = std::thread::spawn(move || p.shutdown_now());
    assert!(wait_until(PATIENCE, || pool.is_shutdown()));
    // Refused after shutdown: handed back, then dropped by us.
    match pool.execute(zst()) {
        Err(SubmitError::ShuttingDown(f)) => drop(f),
        other => panic!("expected a refusal, got {other:?}"),
    }
    latch.open();
    let mut jobs = shut.join().unwrap();
    assert_eq!(jobs.len(), 11, "ten closures and the spawned task");
    assert_eq!(ZST_DROPS.load(SeqCst), 1, "only the refused closure so far");
    // Run half, drop the rest.
    let rest = jobs.split_off(5);
    for j in jobs {
        j.run();
    }
    drop(rest);
    assert_eq!(ZST_RUNS.load(SeqCst), 5);
    assert_eq!(ZST_DROPS.load(SeqCst), 11);
    // The spawned task was among the dropped ones: its handle is cancelled.
    assert!(matches!(h.join(), Err(JoinError::Cancelled)));
}

// ----- refused submits hand the closure back ------------------------------------------------

/// Submits `f` to a shut-down pool, which wraps it, finds the gate closed and unwraps it
/// again (the downcast path); runs what comes back.
fn refuse_then_run<F: FnOnce() + Send + 'static>(pool: &Pool, f: F) {
    match pool.execute(f) {
        Err(SubmitError::ShuttingDown(f)) => f(),
        Ok(()) => panic!("accepted after shutdown"),
    }
}

#[test]
fn a_refused_closure_comes_back_whole_and_drops_once() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    pool.shutdown();
    for (name, make) in kinds() {
        let c = Counts::new();
        match name {
            "one word" => refuse_then_run(&pool, one_word(&c)),
            "three words" => refuse_then_run(&pool, three_words(&c)),
            "nine words" => refuse_then_run(&pool, nine_words(&c)),
            "align 16" => refuse_then_run(&pool, align16(&c)),
            "align 64" => refuse_then_run(&pool, align64(&c)),
            _ => unreachable!(),
        }
        assert_eq!((c.ran(), c.dropped()), (1, 1), "{name}");
        // Refused, then dropped unrun.
        drop(pool.execute(make(&c)));
        assert_eq!((c.ran(), c.dropped()), (1, 2), "{name}");
    }
}

#[test]
fn a_timed_out_closure_comes_back_whole() {
    // The queue is full, so `execute_timeout` wraps the job, fails to push it, and unwraps
    // it again.
    let (pool, latch) = held_pool(1);
    let c = Counts::new();
    pool.execute(one_word(&c)).unwrap();
    let t = Duration::from_millis(1);
    macro_rules! refused {
        ($f:expr) => {
            match pool.execute_timeout($f, t) {
                Err(SubmitTimeoutError::Timeout(f)) => f,
                other => panic!("expected a timeout, got {other:?}"),
            }
        };
    }
    let a = refused!(one_word(&c));
    let b = refused!(three_words(&c));
    let d = refused!(nine_words(&c));
    let e = refused!(align64(&c));
    assert_eq!(c.dropped(), 0);
    a();
    b();
    drop(d);
    e();
    assert_eq!((c.ran(), c.dropped()), (3, 4));
    latch.open();
    pool.shutdown();
    assert_eq!((c.ran(), c.dropped()), (4, 5));
}

#[test]
fn a_refused_spawn_hands_back_its_closure() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    pool.shutdown();
    let c = Counts::new();
    let g = Guard(Arc::clone(&c));
    let f = match pool.spawn(move || {
        g.hit();
        5
    }) {
        Err(SubmitError::ShuttingDown(f)) => f,
        Ok(_) => panic!("accepted after shutdown"),
    };
    assert_eq!(c.dropped(), 0);
    assert_eq!(f(), 5);
    assert_eq!((c.ran(), c.dropped()), (1, 1));
}

#[test]
fn a_refused_batch_comes_back_in_order() {
    let pool = Pool::builder().max_workers(1).build().unwrap();
    pool.shutdown();
    let c = Counts::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    let jobs = (0..10).map(|i| {
        let g = Guard(Arc::clone(&c));
        let o = Arc::clone(&order);
        move || {
            g.hit();
            o.lock().unwrap().push(i);
        }
    });
    let back = match pool.execute_batch(jobs) {
        Err(SubmitError::ShuttingDown(v)) => v,
        Ok(()) => panic!("accepted after shutdown"),
    };
    assert_eq!(back.len(), 10);
    assert_eq!(c.dropped(), 0);
    for f in back {
        f();
    }
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!((c.ran(), c.dropped()), (10, 10));
}

// ----- shutdown_now drains -------------------------------------------------------------------

#[test]
fn drained_jobs_run_or_drop_exactly_once_on_another_thread() {
    let (pool, latch) = held_pool(1000);
    let c = Counts::new();
    for _ in 0..4 {
        pool.execute(one_word(&c)).unwrap();
        pool.execute(three_words(&c)).unwrap();
        pool.execute(nine_words(&c)).unwrap();
        pool.execute(align16(&c)).unwrap();
        pool.execute(align64(&c)).unwrap();
    }
    pool.execute_batch((0..5).map(|_| one_word(&c))).unwrap();
    let spawned: Vec<_> = (0..4)
        .map(|i| {
            let g = Guard(Arc::clone(&c));
            pool.spawn(move || {
                g.hit();
                i
            })
            .unwrap()
        })
        .collect();
    let p = pool.clone();
    let shut = std::thread::spawn(move || p.shutdown_now());
    assert!(wait_until(PATIENCE, || pool.is_shutdown()));
    latch.open();
    let jobs: Vec<Job> = shut.join().unwrap();
    assert_eq!(jobs.len(), 20 + 5 + 4, "every queued job comes back");
    assert_eq!((c.ran(), c.dropped()), (0, 0), "nothing ran or dropped yet");
    // Jobs are `Send`: run every other one on a new thread, drop the rest there.
    let total = jobs.len();
    std::thread::spawn(move || {
        for (i, j) in jobs.into_iter().enumerate() {
            if i % 2 == 0 {
                j.run();
            } else {
                drop(j);
            }
        }
    })
    .join()
    .unwrap();
    let ran = total.div_ceil(2);
    assert_eq!((c.ran(), c.dropped()), (ran, total));
    // Spawned tasks come last in the queue: indices 25..29, of which 26 and 28 ran.
    let results: Vec<_> = spawned.into_iter().map(|h| h.join()).collect();
    assert!(matches!(results[0], Err(JoinError::Cancelled)));
    assert!(matches!(results[1], Ok(1)));
    assert!(matches!(results[2], Err(JoinError::Cancelled)));
    assert!(matches!(results[3], Ok(3)));
    let s = pool.stats();
    assert_eq!(s.returned, total as u64);
}

// ----- panics ----------------------------------------------------------------------------------

/// A closure of the given kind that counts itself and then panics.
fn panicking<F: FnOnce() + Send + 'static>(f: F) -> impl FnOnce() + Send + 'static {
    move || {
        f();
        panic!("job panicked");
    }
}

#[test]
fn panicking_closures_are_dropped_once_and_reported() {
    let panics = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&panics);
    let pool = Pool::builder()
        .max_workers(1)
        .panic_handler(move |_| {
            p.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    let c = Counts::new();
    pool.execute(panicking(one_word(&c))).unwrap();
    pool.execute(panicking(three_words(&c))).unwrap();
    pool.execute(panicking(nine_words(&c))).unwrap();
    pool.execute(panicking(align64(&c))).unwrap();
    // A spawned task's panic goes to its handle, not the panic handler.
    let g = Guard(Arc::clone(&c));
    let h = pool
        .spawn(move || {
            g.hit();
            panic!("spawned panicked");
        })
        .unwrap();
    match h.join() {
        Err(JoinError::Panicked(p)) => {
            assert_eq!(p.downcast_ref::<&str>(), Some(&"spawned panicked"))
        }
        other => panic!("expected the task's panic, got {other:?}"),
    }
    pool.shutdown();
    assert_eq!((c.ran(), c.dropped()), (5, 5));
    assert_eq!(panics.load(SeqCst), 4, "the handler saw each execute panic");
    let s = pool.stats();
    assert_eq!((s.completed, s.panicked), (5, 5));
    assert_eq!(s.spawned, 1, "the worker survived every panic");
}

#[test]
fn a_drained_panicking_job_propagates_its_panic_and_drops_once() {
    let (pool, latch) = held_pool(16);
    let c = Counts::new();
    pool.execute(panicking(one_word(&c))).unwrap();
    pool.execute(panicking(nine_words(&c))).unwrap();
    let g = Guard(Arc::clone(&c));
    let h = pool
        .spawn(move || {
            g.hit();
            panic!("spawned panicked");
        })
        .unwrap();
    let p = pool.clone();
    let shut = std::thread::spawn(move || p.shutdown_now());
    assert!(wait_until(PATIENCE, || pool.is_shutdown()));
    latch.open();
    let jobs = shut.join().unwrap();
    assert_eq!(jobs.len(), 3);
    let mut it = jobs.into_iter();
    for _ in 0..2 {
        let j = it.next().unwrap();
        let r = catch_unwind(AssertUnwindSafe(move || j.run()));
        assert!(
            r.is_err(),
            "an execute job's panic propagates from Job::run"
        );
    }
    // A spawned job delivers its panic to the handle instead.
    it.next().unwrap().run();
    assert!(matches!(h.join(), Err(JoinError::Panicked(_))));
    assert_eq!((c.ran(), c.dropped()), (3, 3));
}
