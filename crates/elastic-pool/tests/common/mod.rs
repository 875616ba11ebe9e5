//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Polls `cond` until it holds or `deadline` passes; returns whether it held. Tests use
/// this instead of sleeping a fixed time and hoping.
pub fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_micros(50);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return cond();
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// A generous deadline for conditions that normally hold within milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A latch tasks can block on until the test releases them.
#[derive(Clone, Default)]
pub struct Latch(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Latch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn wait(&self) {
        let (m, cv) = &*self.0;
        let mut open = m.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }
    pub fn open(&self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// Opens a latch when dropped, so that a failing assertion does not leave workers blocked
/// and the pool's drop (a graceful shutdown) waiting for them forever. Declare it after the
/// pool: locals drop in reverse order.
pub struct OpenOnDrop(pub Latch);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

/// Submits `n` tasks that block on `latch` and waits until all of them have started, which
/// takes `n` workers out of play until the latch opens. A worker counts a dequeue and
/// records a sampled task's wait before running it, so both are in when this returns.
pub fn hold_workers(pool: &elastic_pool::Pool, n: usize, latch: &Latch) {
    let started = Arc::new(AtomicUsize::new(0));
    for _ in 0..n {
        let (l, s) = (latch.clone(), Arc::clone(&started));
        pool.execute(move || {
            s.fetch_add(1, SeqCst);
            l.wait();
        })
        .unwrap();
    }
    assert!(
        wait_until(PATIENCE, || started.load(SeqCst) == n),
        "{n} held tasks did not all start"
    );
}
