//! The submit gate: lets shutdown wait until no submitter is between "checked open" and
//! "pushed", so that no task can slip into the queue after the workers have drained it.
//!
//! # Design note: shutdown vs submit
//!
//! A submitter enters the gate (`active += 1`), checks `closed`, pushes its task and leaves
//! (`active -= 1`). Shutdown sets `closed` and waits for `active` to reach zero; after that
//! every new submitter sees `closed` and hands its job back, so the queue only shrinks and
//! the workers can drain it and exit. The two sides form a Dekker pair over `closed` and
//! `active`, each side writing its own location and then reading the other's: either the
//! submitter sees `closed`, or shutdown sees the submitter's `active` and waits for it.
//! Leaving uses `fence(SeqCst)` between the decrement and the look at `closed`; that same
//! fence orders the caller's push before its look at the idle stack, so the submit path
//! pays for one fence, not two (see `Sleepers::notify_one_after_fence`). Entering relies on
//! `SeqCst` accesses instead of a fence; see `Gate::enter_sees_closed` for why that is
//! sound and how loom checks it.
//!
//! `active` is sharded per thread (cache-padded) so that concurrent submitters do not bounce
//! one cache line; the shards also carry the per-thread submit counters, which lets a
//! submit touch a single line of shared state besides the queue. Shutdown sums the shards.
//! The last submitter to leave a closed gate signals a condvar, so shutdown parks rather
//! than polls. `tests/loom_gate.rs` checks that no push is missed.
//!
//! A `try_*` submit that finds the queue full is refused without entering the gate: it
//! pushes nothing, so it has no part in the Dekker pair. It counts itself on its own
//! shard's counters (`Gate::my_counters`) as shutdown if it sees `closed` (acquire), else
//! as overload. Once `shutdown` has returned, every later refusal sees `closed`.

use crate::sync::{fence, lock, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize as StdAtomicUsize};
use std::time::Instant;

/// Per-thread counters kept beside the gate's `active` count. Pure metrics: they bypass loom.
#[derive(Debug, Default)]
pub struct SubmitCounters {
    /// Tasks accepted into the queue.
    pub submitted: AtomicU64,
    /// Rejected because the queue was full (`try_*`) or the timeout passed.
    pub rejected_full: AtomicU64,
    /// Rejected because the pool was shutting down.
    pub rejected_shutdown: AtomicU64,
}

#[derive(Debug, Default)]
struct Shard {
    active: AtomicUsize,
    counters: SubmitCounters,
}

/// The gate. See the module docs.
#[derive(Debug)]
pub struct Gate {
    shards: Box<[CachePadded<Shard>]>,
    mask: usize,
    closed: AtomicBool,
    waiter: Mutex<()>,
    drained: Condvar,
}

/// Proof of being inside the gate; leaving happens on drop.
pub struct Pass<'a> {
    gate: &'a Gate,
    shard: &'a Shard,
}

impl Pass<'_> {
    /// This thread's counters.
    #[inline]
    pub fn counters(&self) -> &SubmitCounters {
        &self.shard.counters
    }
}

impl Drop for Pass<'_> {
    #[inline]
    fn drop(&mut self) {
        self.shard.active.fetch_sub(1, Ordering::Release);
        // Pairs with the fence in `close_and_wait`: if we do not see `closed`, the closer
        // sees our decrement. The fence also orders the push before the caller's look at
        // the idle stack (see `Sleepers::notify_one`).
        fence(Ordering::SeqCst);
        if self.gate.closed.load(Ordering::Relaxed) {
            self.gate.signal_closer();
        }
    }
}

static NEXT_THREAD_SLOT: StdAtomicUsize = StdAtomicUsize::new(0);
thread_local! {
    static THREAD_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// A small per-thread number used to pick shards; stable for the thread's life.
#[inline]
pub fn thread_slot() -> usize {
    THREAD_SLOT.with(|s| {
        let v = s.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_THREAD_SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        s.set(v);
        v
    })
}

impl Gate {
    /// A gate with `shards` shards (rounded up to a power of two).
    pub fn new(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        Gate {
            shards: (0..n).map(|_| CachePadded::new(Shard::default())).collect(),
            mask: n - 1,
            closed: AtomicBool::new(false),
            waiter: Mutex::new(()),
            drained: Condvar::new(),
        }
    }

    #[inline]
    fn my_shard(&self) -> &Shard {
        &self.shards[thread_slot() & self.mask]
    }

    /// This thread's counters, without entering the gate: for a refusal decided before any
    /// push. Such a submit never reaches the queue, so shutdown need not wait for it, and it
    /// skips the enter/leave pair (two locked instructions and a fence).
    #[inline]
    pub fn my_counters(&self) -> &SubmitCounters {
        &self.my_shard().counters
    }

    /// Enters the gate, or returns this thread's counters if the gate is closed.
    #[inline]
    pub fn enter(&self) -> Result<Pass<'_>, &SubmitCounters> {
        let shard = self.my_shard();
        let pass = Pass { gate: self, shard };
        if self.enter_sees_closed(shard) {
            drop(pass);
            return Err(&shard.counters);
        }
        Ok(pass)
    }

    /// Counts the caller in, then reports whether the gate is closed. Pairs with
    /// `close_and_wait`: see the module notes.
    ///
    /// Outside loom this is a `SeqCst` read-modify-write followed by a `SeqCst` load: all
    /// four accesses of the Dekker pair are sequentially consistent, so the single total
    /// order forbids both sides reading the old value, and on x86 the locked add is the
    /// barrier (no separate fence on the hottest path). loom treats `SeqCst` accesses as
    /// acquire/release (a documented limitation), so under loom the same pair is written
    /// with an explicit fence, which loom models exactly.
    #[inline]
    fn enter_sees_closed(&self, shard: &Shard) -> bool {
        #[cfg(not(loom))]
        {
            shard.active.fetch_add(1, Ordering::SeqCst);
            self.closed.load(Ordering::SeqCst)
        }
        #[cfg(loom)]
        {
            shard.active.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            self.closed.load(Ordering::Relaxed)
        }
    }

    /// Whether the gate has been closed.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    #[cold]
    fn signal_closer(&self) {
        let _g = lock(&self.waiter);
        self.drained.notify_all();
    }

    fn active(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.active.load(Ordering::SeqCst))
            .sum()
    }

    /// Closes the gate and waits until no submitter is inside. Returns false if `deadline`
    /// passed first (the gate stays closed).
    pub fn close_and_wait(&self, deadline: Option<Instant>) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let mut g = lock(&self.waiter);
        loop {
            if self.active() == 0 {
                return true;
            }
            g = match deadline {
                None => match self.drained.wait(g) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                },
                #[cfg(not(loom))]
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    match self.drained.wait_timeout(g, d - now) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    }
                }
                #[cfg(loom)]
                Some(_) => match self.drained.wait(g) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                },
            };
        }
    }

    /// Sums the submit counters over all shards, in one pass: `(submitted, rejected_full,
    /// rejected_shutdown)`.
    pub fn sums(&self) -> (u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.shards.iter().fold((0, 0, 0), |(a, b, c), s| {
            let k = &s.counters;
            (
                a + k.submitted.load(Relaxed),
                b + k.rejected_full.load(Relaxed),
                c + k.rejected_shutdown.load(Relaxed),
            )
        })
    }
}
