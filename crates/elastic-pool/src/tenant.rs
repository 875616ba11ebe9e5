//! Per-tenant counters: keys registered once by name, then addressed by a dense index.
//!
//! `Pool::key("tenant-a")` consults a map only when registering; it returns a [`Key`], a
//! small copyable index into a fixed slice of counter slots. Submitting with a key updates
//! that slot's submitted / completed / rejected counts and its wait histogram; reading every
//! key (as a control tick does) walks the slice and touches no map. The slice is allocated
//! at build with room for `max_keys` keys, so a slot never moves while workers write to it.

use crate::histogram::{Histogram, Snapshot};
use crate::sync::lock_std as lock;
use crossbeam_utils::CachePadded;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Mutex;

/// A registered tenant key of one pool; see [`Pool::key`](crate::Pool::key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(pub(crate) u32);

impl Key {
    /// The key's dense index (0, 1, 2, … in registration order).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Marks a task submitted without a key.
pub(crate) const NO_KEY: u32 = u32::MAX;

/// The counters of one key.
#[derive(Default)]
pub(crate) struct KeySlot {
    pub(crate) submitted: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) wait: Histogram,
    pub(crate) wait_samples: AtomicU64,
}

/// A point-in-time view of one key's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStats {
    /// The key.
    pub key: Key,
    /// Tasks accepted with this key.
    pub submitted: u64,
    /// Tasks with this key that ran.
    pub completed: u64,
    /// Tasks with this key that were refused (overload, timeout or shutdown).
    pub rejected: u64,
    /// Queue waits sampled for this key.
    pub wait_samples: u64,
}

/// Why a key could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("all {capacity} tenant key slots are taken (raise Builder::max_keys)")]
pub struct KeysFull {
    /// How many keys the pool was built for.
    pub capacity: usize,
}

/// The registry and the slots.
pub(crate) struct KeyTable {
    names: Mutex<HashMap<String, u32>>,
    slots: Box<[CachePadded<KeySlot>]>,
    len: AtomicUsize,
}

impl KeyTable {
    pub(crate) fn new(capacity: usize) -> Self {
        KeyTable {
            names: Mutex::new(HashMap::new()),
            slots: (0..capacity)
                .map(|_| CachePadded::new(KeySlot::default()))
                .collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// Registers `name` (or finds it) and returns its key.
    pub(crate) fn key(&self, name: &str) -> Result<Key, KeysFull> {
        let mut names = lock(&self.names);
        if let Some(&i) = names.get(name) {
            return Ok(Key(i));
        }
        let i = names.len();
        if i >= self.slots.len() {
            return Err(KeysFull {
                capacity: self.slots.len(),
            });
        }
        names.insert(name.to_owned(), i as u32);
        self.len.store(i + 1, Release);
        Ok(Key(i as u32))
    }

    /// The name a key was registered with.
    pub(crate) fn name(&self, key: Key) -> Option<String> {
        lock(&self.names)
            .iter()
            .find(|(_, &i)| i == key.0)
            .map(|(n, _)| n.clone())
    }

    /// The slot of a key index carried by a task (`None` for [`NO_KEY`]).
    #[inline]
    pub(crate) fn slot(&self, key: u32) -> Option<&KeySlot> {
        self.slots.get(key as usize).map(|s| &**s)
    }

    /// Visits every registered key without touching the map or allocating.
    pub(crate) fn for_each(&self, mut f: impl FnMut(KeyStats, &Histogram)) {
        let n = self.len.load(Acquire);
        for (i, s) in self.slots[..n].iter().enumerate() {
            f(
                KeyStats {
                    key: Key(i as u32),
                    submitted: s.submitted.load(Relaxed),
                    completed: s.completed.load(Relaxed),
                    rejected: s.rejected.load(Relaxed),
                    wait_samples: s.wait_samples.load(Relaxed),
                },
                &s.wait,
            );
        }
    }

    /// One key's counters and a copy of its wait histogram.
    pub(crate) fn stats(&self, key: Key, wait: &mut Snapshot) -> Option<KeyStats> {
        let mut out = None;
        if key.index() < self.len.load(Acquire) {
            let s = &self.slots[key.index()];
            s.wait.snapshot_into(wait);
            out = Some(KeyStats {
                key,
                submitted: s.submitted.load(Relaxed),
                completed: s.completed.load(Relaxed),
                rejected: s.rejected.load(Relaxed),
                wait_samples: s.wait_samples.load(Relaxed),
            });
        }
        out
    }
}
