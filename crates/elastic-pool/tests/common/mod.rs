//! Helpers shared by the integration tests.
#![allow(dead_code)]

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
