//! Synchronisation facade: loom's types under `cfg(loom)`, std's otherwise.
//!
//! Only the lock-free protocols that the loom models check (the idle-worker stack in
//! [`crate::sleep`], the submit gate in [`crate::gate`] and the sample log in
//! [`crate::sample_log`]) go through this facade. Counters
//! that are pure metrics bypass it on purpose: loom would only multiply the state space.

#[cfg(loom)]
pub(crate) use loom::{
    sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::{self, Thread},
};

#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::{self, Thread},
};

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves the
/// protected data consistent before anything that could panic runs, and user code never runs
/// under these locks.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// [`lock`] for a `std` mutex, for state that never goes through loom.
pub(crate) fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
