//! The idle-worker stack: how a worker parks, and how a submitter wakes exactly one.
//!
//! # Design note: park / wake
//!
//! Idle workers park on their own thread handle, not inside the queue. A mutex-protected
//! stack records who is parked; an atomic `idle` count mirrors its length so that the
//! submit path can skip the lock entirely when nobody is parked (the common case under
//! load).
//!
//! * **LIFO.** A submitter wakes the most recently parked worker. Hot workers are reused and
//!   the surplus stays cold at the bottom of the stack, where keep-alive expiry and
//!   [`Sleepers::retire_coldest`] find it. A FIFO wake order (crossbeam-channel's, for
//!   instance) spreads a light load over every idle thread so that none ever expires.
//! * **No lost wake-up.** The protocol is a Dekker pair over two locations, the queue and
//!   `idle`:
//!   - submitter: push the task, `fence(SeqCst)`, load `idle`; if non-zero, pop one sleeper
//!     and unpark it;
//!   - worker: push itself and bump `idle` (under the lock), `fence(SeqCst)`, look at the
//!     queue once more before parking.
//!
//!   With both fences sequentially consistent, at least one side sees the other's write: the
//!   worker finds the task, or the submitter finds the sleeper. `tests/loom_sleep.rs` checks
//!   this exhaustively.
//! * **One wake per task.** `notify_one` pops a single sleeper. A woken worker drains the
//!   queue before it parks again, so a task whose submitter found the stack already emptied
//!   by a concurrent submitter is still run.
//! * **State changes under the lock.** Whoever pops a sleeper writes its [`Wake`] reason
//!   while holding the lock and unparks it after releasing the lock (signalling after the
//!   release is the faster order). A worker that stops waiting on its own (it found work, or
//!   its keep-alive expired) removes itself under the same lock; if it is no longer on the
//!   stack it was popped, and it consumes the reason written for it. Thread park tokens are
//!   therefore only hints: a stale unpark causes one extra loop, never a wrong decision.
//!   The reason is written with `swap`, not `store`: the worker consumes it with `swap`,
//!   and loom 0.7 can let a read-modify-write miss a plain store that happens-before it,
//!   which shows up as a false lost wake-up in the models.

use crate::sync::{fence, lock, Arc, AtomicU8, AtomicUsize, Mutex, Ordering, Thread};

/// Workers [`Sleepers::retire_coldest_parked_before`] pops per lock.
const RETIRE_CHUNK: usize = 8;

const EMPTY: u8 = 0;
const NOTIFIED: u8 = 1;
const RETIRE: u8 = 2;

/// Why a parked worker woke up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A submitter (or shutdown) popped it: go and look at the queue.
    Notified,
    /// The pool shrank: retire if the pool is still above its target.
    Retire,
    /// Its keep-alive expired while it was still on the stack; it has removed itself.
    TimedOut,
}

/// One worker's parking slot.
#[derive(Debug)]
pub struct Sleeper {
    thread: Thread,
    state: AtomicU8,
    /// When it last parked (pool clock ns); metadata for idle-age trimming, not part of
    /// the wake protocol, so it bypasses loom.
    parked_at: std::sync::atomic::AtomicU64,
}

impl Sleeper {
    /// A slot for the calling thread.
    pub fn for_current_thread() -> Arc<Sleeper> {
        Arc::new(Sleeper {
            thread: crate::sync::thread::current(),
            state: AtomicU8::new(EMPTY),
            parked_at: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Takes the wake reason written for this sleeper, if any.
    fn take(&self) -> Option<Wake> {
        match self.state.swap(EMPTY, Ordering::Acquire) {
            NOTIFIED => Some(Wake::Notified),
            RETIRE => Some(Wake::Retire),
            _ => None,
        }
    }
}

/// The stack of parked workers.
#[derive(Debug, Default)]
pub struct Sleepers {
    stack: Mutex<Vec<Arc<Sleeper>>>,
    idle: AtomicUsize,
    /// Workers popped to look at the queue that have not yet resumed: a wake-up the OS has
    /// not yet scheduled. Growth counts them as covering queued tasks (a burst of wake-ups
    /// on a busy machine is not a reason to start threads). Metadata, not part of the wake
    /// protocol, so it bypasses loom.
    waking: std::sync::atomic::AtomicUsize,
}

impl Sleepers {
    /// An empty stack.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of parked workers (a snapshot).
    pub fn idle(&self) -> usize {
        self.idle.load(Ordering::Relaxed)
    }

    /// Number of workers woken to look at the queue that have not resumed yet (a snapshot).
    pub fn waking(&self) -> usize {
        self.waking.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Passes a consumed wake reason through, counting a consumed `Notified` off `waking`.
    fn consumed(&self, w: Option<Wake>) -> Option<Wake> {
        if w == Some(Wake::Notified) {
            self.waking
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        w
    }

    /// Called by a submitter right after it enqueued a task: wakes the most recently parked
    /// worker, if any. Returns whether one was woken.
    #[inline]
    // The pool's submit path fences while leaving the gate and calls the `_after_fence`
    // form; the loom models use this one.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn notify_one(&self) -> bool {
        // Pairs with the fence in `register`: see the design note.
        fence(Ordering::SeqCst);
        self.notify_one_after_fence()
    }

    /// [`Sleepers::notify_one`] for a caller that has already issued a `fence(SeqCst)`
    /// after its push (the submit path: leaving the submit gate fences).
    #[inline]
    pub fn notify_one_after_fence(&self) -> bool {
        if self.idle.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.notify_one_slow()
    }

    #[cold]
    fn notify_one_slow(&self) -> bool {
        let popped = {
            let mut stack = lock(&self.stack);
            let popped = stack.pop();
            if let Some(s) = &popped {
                s.state.swap(NOTIFIED, Ordering::Release);
                self.idle.fetch_sub(1, Ordering::Relaxed);
                self.waking
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            popped
        };
        match popped {
            Some(s) => {
                s.thread.unpark();
                true
            }
            None => false,
        }
    }

    /// Wakes every parked worker (shutdown).
    pub fn notify_all(&self) {
        let popped: Vec<Arc<Sleeper>> = {
            let mut stack = lock(&self.stack);
            for s in stack.iter() {
                s.state.swap(NOTIFIED, Ordering::Release);
            }
            self.idle.store(0, Ordering::Relaxed);
            self.waking
                .fetch_add(stack.len(), std::sync::atomic::Ordering::Relaxed);
            std::mem::take(&mut *stack)
        };
        for s in popped {
            s.thread.unpark();
        }
    }

    /// Asks up to `n` of the coldest parked workers (the bottom of the stack) to retire.
    /// Returns how many were asked. A worker asked to retire re-checks the pool's target
    /// itself, so a request that races with growth is harmless.
    pub fn retire_coldest(&self, n: usize) -> usize {
        self.retire_coldest_parked_before(n, u64::MAX)
    }

    /// [`Sleepers::retire_coldest`], limited to workers parked at or before `cutoff_ns`
    /// (pool clock): surplus that has stayed idle, not a worker that just finished a task.
    ///
    /// Works in chunks of [`RETIRE_CHUNK`] held in a fixed array, each unparked after its
    /// lock is released, so a control tick that retires workers allocates nothing.
    pub fn retire_coldest_parked_before(&self, n: usize, cutoff_ns: u64) -> usize {
        let mut done = 0;
        while done < n && self.idle() > 0 {
            let want = RETIRE_CHUNK.min(n - done);
            let mut popped: [Option<Arc<Sleeper>>; RETIRE_CHUNK] = Default::default();
            let k = {
                let mut stack = lock(&self.stack);
                // The stack is ordered by park time, oldest at the bottom.
                let k = stack
                    .iter()
                    .take(want)
                    .take_while(|s| {
                        s.parked_at.load(std::sync::atomic::Ordering::Relaxed) <= cutoff_ns
                    })
                    .count();
                for (slot, s) in popped.iter_mut().zip(stack.drain(..k)) {
                    s.state.swap(RETIRE, Ordering::Release);
                    *slot = Some(s);
                }
                self.idle.fetch_sub(k, Ordering::Relaxed);
                k
            };
            for s in popped.iter().flatten() {
                s.thread.unpark();
            }
            done += k;
            if k < want {
                break;
            }
        }
        done
    }

    /// Puts `me` on the stack. The caller must look at the queue once more afterwards, and
    /// call [`Sleepers::cancel`] if it finds work, or [`Sleepers::wait`] if it does not.
    // The pool's workers use `register_at`; the loom models use this one.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn register(&self, me: &Arc<Sleeper>) {
        self.register_at(me, 0);
    }

    /// [`Sleepers::register`], recording the park time (pool clock ns) for idle-age
    /// trimming.
    pub fn register_at(&self, me: &Arc<Sleeper>, now_ns: u64) {
        me.parked_at
            .store(now_ns, std::sync::atomic::Ordering::Relaxed);
        {
            let mut stack = lock(&self.stack);
            // A reason left over from an earlier pop was consumed by `take` or `cancel`;
            // nobody can write one while we are off the stack.
            stack.push(Arc::clone(me));
            self.idle.fetch_add(1, Ordering::Relaxed);
        }
        // Pairs with the fence in `notify_one`: see the design note.
        fence(Ordering::SeqCst);
    }

    /// Takes `me` off the stack after it found work during its last look. Returns the wake
    /// reason if somebody popped it in the meantime (that wake is then consumed here).
    pub fn cancel(&self, me: &Arc<Sleeper>) -> Option<Wake> {
        let mut stack = lock(&self.stack);
        if let Some(pos) = stack.iter().rposition(|s| Arc::ptr_eq(s, me)) {
            stack.remove(pos);
            self.idle.fetch_sub(1, Ordering::Relaxed);
            None
        } else {
            self.consumed(me.take())
        }
    }

    /// Parks until popped, or until `deadline` passes while still on the stack.
    #[cfg(not(loom))]
    pub fn wait(&self, me: &Arc<Sleeper>, deadline: Option<std::time::Instant>) -> Wake {
        loop {
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        return match self.cancel(me) {
                            None => Wake::TimedOut,
                            Some(w) => w,
                        };
                    }
                    std::thread::park_timeout(d - now);
                }
            }
            if let Some(w) = self.consumed(me.take()) {
                return w;
            }
            // Spurious, a stale token, or the deadline: loop and look again.
        }
    }

    /// Parks until popped (loom has no timed park; the models drive expiry through
    /// [`Sleepers::cancel`] instead).
    #[cfg(loom)]
    pub fn wait(&self, me: &Arc<Sleeper>, _deadline: Option<std::time::Instant>) -> Wake {
        loop {
            if let Some(w) = self.consumed(me.take()) {
                return w;
            }
            crate::sync::thread::park();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_popped_worker_counts_as_waking_until_it_takes_its_wake() {
        let s = Sleepers::new();
        let me = Sleeper::for_current_thread();
        s.register(&me);
        assert_eq!((s.idle(), s.waking()), (1, 0));
        assert!(s.notify_one());
        assert_eq!((s.idle(), s.waking()), (0, 1));
        // The unpark token is already set, so this returns at once.
        assert_eq!(s.wait(&me, None), Wake::Notified);
        assert_eq!(s.waking(), 0);

        // Popped while it was about to cancel (it had found work itself).
        s.register(&me);
        assert!(s.notify_one());
        assert_eq!(s.waking(), 1);
        assert_eq!(s.cancel(&me), Some(Wake::Notified));
        assert_eq!(s.waking(), 0);

        // Asked to retire: not a wake-up that covers a task.
        s.register(&me);
        assert_eq!(s.retire_coldest(1), 1);
        assert_eq!(s.waking(), 0);
        assert_eq!(s.wait(&me, None), Wake::Retire);
        assert_eq!(s.waking(), 0);
    }
}
