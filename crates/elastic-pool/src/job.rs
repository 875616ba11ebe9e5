//! Type-erased jobs for the closure pool — small closures stored inline, larger ones boxed —
//! and how a failed submit gets the caller's own closure back.
//!
//! # Design note: inline storage
//!
//! A [`Job`] is a pointer to a static per-type table of functions plus [`INLINE_WORDS`]
//! words of storage. A job whose type fits the storage (size and alignment) is moved into
//! it; any other is boxed and the box is stored instead. An empty task thus costs no
//! allocation: with glibc, a block allocated on the submitting thread and freed on a worker
//! takes the slow cross-thread free path, which was most of the instructions of an
//! empty-task round trip (`examples/submit_cost.rs` under callgrind).
//!
//! Ownership: the storage holds exactly one live value of the table's type from
//! construction until one of three consuming operations — [`Job::run`] (moves it out and
//! runs it), `Drop` (drops it in place) or [`Job::downcast`] (moves it out and returns it) —
//! and each of these takes the job by value, so the value is dropped exactly once. Moving a
//! `Job` moves the bytes of the value, which is how every Rust value moves (nothing here is
//! pinned).

use crate::error::JoinError;
use std::any::TypeId;
use std::cell::Cell;
use std::marker::PhantomData;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a worker learns from running one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Ran to completion.
    Done,
    /// Panicked; the panic was already delivered (to a [`TaskHandle`](crate::TaskHandle)).
    PanickedDelivered,
}

/// A unit of work in the closure pool's queue.
pub(crate) trait Run: Send + 'static {
    /// Runs the job. A panic may escape; the worker catches it.
    fn run(self) -> Outcome;
}

/// A fire-and-forget closure.
pub(crate) struct Exec<F>(pub(crate) F);

impl<F: FnOnce() + Send + 'static> Run for Exec<F> {
    #[inline]
    fn run(self) -> Outcome {
        (self.0)();
        Outcome::Done
    }
}

/// A closure whose result (or panic) goes to a [`TaskHandle`](crate::TaskHandle).
pub(crate) struct Spawned<F, T> {
    pub(crate) f: F,
    pub(crate) tx: oneshot::Sender<Result<T, JoinError>>,
}

impl<F, T> Run for Spawned<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self) -> Outcome {
        let Spawned { f, tx } = self;
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => {
                // The handle may have been dropped: the result is simply discarded.
                let _ = tx.send(Ok(v));
                Outcome::Done
            }
            Err(payload) => {
                let _ = tx.send(Err(JoinError::Panicked(payload)));
                Outcome::PanickedDelivered
            }
        }
    }
}

/// A job too large or too aligned for the inline storage, boxed.
struct Boxed<R>(Box<R>);

impl<R: Run> Run for Boxed<R> {
    #[inline]
    fn run(self) -> Outcome {
        (*self.0).run()
    }
}

/// How many machine words a job may occupy and still be stored inline. Three words hold a
/// closure capturing, say, an `Arc` and two integers, or a spawned closure capturing two
/// words beside its result sender; a `Job` is then four words.
pub(crate) const INLINE_WORDS: usize = 3;

type Storage = MaybeUninit<[usize; INLINE_WORDS]>;

/// Whether a value of type `R` can live in the inline storage.
const fn fits<R>() -> bool {
    size_of::<R>() <= size_of::<Storage>() && align_of::<R>() <= align_of::<Storage>()
}

/// What a `Job` knows about the type in its storage.
struct VTable {
    /// Moves the value out of the storage and runs it.
    run: unsafe fn(*mut u8) -> Outcome,
    /// Drops the value in place.
    drop: unsafe fn(*mut u8),
    /// The stored type, checked before a downcast.
    type_id: fn() -> TypeId,
}

/// # Safety
/// `p` must point to a live, properly aligned `R` that the caller owns and never uses again.
unsafe fn run_raw<R: Run>(p: *mut u8) -> Outcome {
    // SAFETY: the caller guarantees that `p` holds a live `R` it gives up; reading it moves
    // ownership here, so `R` is dropped exactly once (by `run`, or by unwinding from it).
    let r = unsafe { p.cast::<R>().read() };
    r.run()
}

/// # Safety
/// As [`run_raw`].
unsafe fn drop_raw<R>(p: *mut u8) {
    // SAFETY: the caller guarantees that `p` holds a live `R` it gives up.
    unsafe { p.cast::<R>().drop_in_place() }
}

/// The table for jobs of type `R` stored inline.
struct Table<R>(PhantomData<R>);

impl<R: Run> Table<R> {
    /// A constant, so `&Table::<R>::VTABLE` is promoted to a `'static` reference.
    const VTABLE: VTable = VTable {
        run: run_raw::<R>,
        drop: drop_raw::<R>,
        type_id: TypeId::of::<R>,
    };
}

/// A job of the closure pool, as returned by [`Pool::shutdown_now`](crate::Pool::shutdown_now)
/// for tasks that never ran. Run it, or drop it (a dropped spawned task resolves its handle
/// to [`JoinError::Cancelled`]).
pub struct Job {
    vtable: &'static VTable,
    /// Holds one live value of the type `vtable` was made for (see the module notes).
    data: Storage,
    /// Keeps the auto traits of the former `Box<dyn Run>` (`Run: Send`): `Send` only,
    /// neither `Sync` nor unwind-safe.
    _not_sync: PhantomData<(Cell<()>, &'static mut ())>,
}

impl Job {
    /// Wraps a job, inline if it fits, boxed otherwise.
    #[inline]
    pub(crate) fn new<R: Run>(r: R) -> Job {
        if fits::<R>() {
            Job::inline(r)
        } else {
            Job::inline(Boxed(Box::new(r)))
        }
    }

    #[inline]
    fn inline<R: Run>(r: R) -> Job {
        // Constant-folded: `new` only calls this for types that fit (a box always does).
        assert!(fits::<R>(), "an inline job must fit its storage");
        let mut data = Storage::uninit();
        // SAFETY: `R` fits the storage in size and alignment (checked above), and the
        // storage is fresh, so writing overwrites nothing.
        unsafe { data.as_mut_ptr().cast::<R>().write(r) };
        Job {
            vtable: &Table::<R>::VTABLE,
            data,
            _not_sync: PhantomData,
        }
    }

    /// Runs the job on the calling thread.
    ///
    /// # Panics
    /// Propagates a panic from a closure submitted with `execute`; a task submitted with
    /// `spawn` delivers its panic to its handle instead.
    pub fn run(self) {
        let _ = self.run_job();
    }

    /// Runs the job and reports how it went (a worker's entry point).
    #[inline]
    pub(crate) fn run_job(self) -> Outcome {
        let mut this = ManuallyDrop::new(self);
        let run = this.vtable.run;
        // SAFETY: the storage holds a live value of the type `run` was made for (module
        // notes); `this` is never dropped or used again, so `run` takes sole ownership.
        unsafe { run(this.data.as_mut_ptr().cast()) }
    }

    /// Recovers the concrete job; only the submit paths call this, with the type they
    /// wrapped.
    pub(crate) fn downcast<R: Run>(self) -> R {
        if fits::<R>() {
            self.take::<R>()
        } else {
            *self.take::<Boxed<R>>().0
        }
    }

    /// Moves the stored value out as an `S`.
    fn take<S: Run>(self) -> S {
        assert!(
            (self.vtable.type_id)() == TypeId::of::<S>(),
            "a job is only downcast to the type it was wrapped from"
        );
        let this = ManuallyDrop::new(self);
        // SAFETY: the storage holds a live `S` (its type was just checked), and `this` is
        // never dropped or used again, so the value is moved out exactly once.
        unsafe { this.data.as_ptr().cast::<S>().read() }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let drop = self.vtable.drop;
        // SAFETY: the storage holds a live value of the type `drop` was made for (every
        // path that moves it out wraps the job in `ManuallyDrop` first), and this is the
        // job's last use.
        unsafe { drop(self.data.as_mut_ptr().cast()) }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that carries a value and does nothing.
    struct Val<T>(T);
    impl<T: Send + 'static> Run for Val<T> {
        fn run(self) -> Outcome {
            Outcome::Done
        }
    }

    #[test]
    fn a_job_is_four_words_and_an_empty_closure_fits() {
        assert_eq!(size_of::<Job>(), (INLINE_WORDS + 1) * size_of::<usize>());
        assert!(fits::<Exec<fn()>>());
        assert!(fits::<Exec<[usize; INLINE_WORDS]>>());
        assert!(!fits::<Exec<[usize; INLINE_WORDS + 1]>>());
        assert!(fits::<Boxed<[u8; 1024]>>());
    }

    #[test]
    fn downcast_returns_the_value_inline_or_boxed() {
        let small = Job::new(Val(7u64));
        assert_eq!(small.downcast::<Val<u64>>().0, 7);
        let big = Job::new(Val([3u64; 8]));
        assert_eq!(big.downcast::<Val<[u64; 8]>>().0, [3; 8]);
    }

    #[test]
    #[should_panic(expected = "only downcast to the type")]
    fn downcast_to_another_type_panics() {
        let _ = Job::new(Val(7u64)).downcast::<Val<u32>>();
    }
}
