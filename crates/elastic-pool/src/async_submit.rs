//! Async submission with backpressure: [`AsyncPool`] waits for room in a full queue without
//! blocking the thread that polls it, so a tokio (or any) executor can offload blocking work
//! to a bounded pool and slow down when the pool is full.
//!
//! # Design note: the waiting room
//!
//! A submit first tries the queue without blocking ([`Pool::try_spawn`]). If the queue is
//! full, the job goes into a *waiting room*: a FIFO served by one helper thread per
//! [`AsyncPool`], which hands each job to the pool with the ordinary blocking submit and
//! sends the outcome back over a oneshot channel whose receiver is the future being awaited.
//! The helper is the only thread that ever blocks, and it blocks in the queue's own
//! `send`, which the queue wakes exactly when a worker frees a slot: no polling, no timer,
//! no executor-specific API, and no hook in the pool. While the room holds jobs, new submits
//! join its end instead of trying the queue, so jobs that waited are not overtaken by
//! later ones (FIFO among async submitters; synchronous submitters of the same pool compete
//! with the helper as with each other).
//!
//! What it costs: one parked thread per `AsyncPool` (started with it), a boxed closure and a
//! oneshot channel per submit that had to wait, nothing for one that did not. The room is
//! unbounded, but it holds only jobs whose futures are being awaited, so it is bounded by
//! the number of waiting callers, as a blocking submit is by the number of blocked threads.
//!
//! Cancellation: dropping a future that waits in the room drops its job unrun, unless the
//! job has reached the head of the room and is being handed to the pool, in which case it
//! is submitted (and, for [`AsyncPool::spawn`], detached) as if the future had lived.
//!
//! A pool hook would let the future itself wait instead of the helper thread (workers wake
//! one registered waker per dequeue, and the future retries `try_spawn`); the helper keeps
//! that logic out of the workers' loop at the price of one thread.

use crate::error::{SubmitError, TrySubmitError};
use crate::{Pool, TaskHandle};
use crossbeam_channel::{Receiver, Sender};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::task::{Context, Poll};

/// A job in the waiting room: hands itself to the pool and reports the outcome.
type Waiter = Box<dyn FnOnce(&Pool) + Send>;

/// The waiting room shared by an [`AsyncPool`]'s clones.
struct Room {
    tx: Sender<Waiter>,
    /// Jobs in the room (sent to the helper and not yet handed over).
    waiting: Arc<AtomicUsize>,
}

impl Room {
    fn start(pool: Pool) -> std::io::Result<Room> {
        let (tx, rx) = crossbeam_channel::unbounded::<Waiter>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&waiting);
        std::thread::Builder::new()
            .name("elastic-pool-async".into())
            .spawn(move || serve_room(pool, rx, count))?;
        Ok(Room { tx, waiting })
    }

    fn enter(&self, w: Waiter) {
        self.waiting.fetch_add(1, AcqRel);
        // The helper receives until every sender is gone, and this one is alive.
        if self.tx.send(w).is_err() {
            unreachable!("elastic-pool: the async waiting room's thread is gone");
        }
    }
}

/// The helper thread: hands each waiting job to the pool in order, blocking while the queue
/// is full. Exits when every [`AsyncPool`] clone is gone and the room is empty.
fn serve_room(pool: Pool, rx: Receiver<Waiter>, waiting: Arc<AtomicUsize>) {
    while let Ok(w) = rx.recv() {
        // A submit does not run the job, so nothing here should panic; if it does, the
        // room must still serve the jobs behind it (the waiter's future then panics).
        let _ = catch_unwind(AssertUnwindSafe(|| w(&pool)));
        waiting.fetch_sub(1, AcqRel);
    }
}

/// A handle to a [`Pool`] for async code: [`spawn`](AsyncPool::spawn) and
/// [`execute`](AsyncPool::execute) return futures that wait for room in a full queue
/// without blocking the thread that polls them (see the module's design note).
///
/// ```
/// use elastic_pool::{async_submit::AsyncPool, Pool};
///
/// let pool = Pool::builder().max_workers(4).queue_capacity(16).build()?;
/// let offload = AsyncPool::new(pool.clone())?;
/// let answer = futures::executor::block_on(async {
///     let handle = offload.spawn(|| 6 * 7).await?; // waits for room, if need be
///     Ok::<_, Box<dyn std::error::Error>>(handle.await?) // waits for the result
/// })?;
/// assert_eq!(answer, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Cloning gives another handle to the same pool and waiting room. The room's thread exits
/// once every clone is dropped and the jobs still waiting have been handed over; it holds a
/// handle to the pool until then.
#[derive(Clone)]
pub struct AsyncPool {
    pool: Pool,
    room: Arc<Room>,
}

impl std::fmt::Debug for AsyncPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncPool")
            .field("waiting", &self.waiting())
            .field("pool", &self.pool)
            .finish()
    }
}

impl AsyncPool {
    /// Wraps `pool` and starts its waiting room's thread (`elastic-pool-async`).
    ///
    /// # Errors
    /// The OS refused the thread.
    pub fn new(pool: Pool) -> std::io::Result<AsyncPool> {
        let room = Arc::new(Room::start(pool.clone())?);
        Ok(AsyncPool { pool, room })
    }

    /// The pool behind this handle.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Jobs waiting for room right now.
    pub fn waiting(&self) -> usize {
        self.room.waiting.load(Acquire)
    }

    /// Submits `f` and resolves to its [`TaskHandle`] once the pool accepted it, waiting for
    /// room while the queue is full (backpressure) without blocking the polling thread. Await
    /// the handle for the result. The future does nothing until polled.
    ///
    /// # Errors
    /// The future resolves to [`SubmitError::ShuttingDown`], with `f` inside, once the pool
    /// is shutting down.
    pub fn spawn<F, T>(&self, f: F) -> Submit<F, TaskHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Submit::new(
            self.clone(),
            f,
            Pool::try_spawn::<F, T>,
            Pool::spawn::<F, T>,
        )
    }

    /// Submits `f`, fire and forget, resolving once the pool accepted it; waits for room like
    /// [`spawn`](AsyncPool::spawn).
    ///
    /// # Errors
    /// As [`spawn`](AsyncPool::spawn).
    pub fn execute<F>(&self, f: F) -> Submit<F, ()>
    where
        F: FnOnce() + Send + 'static,
    {
        Submit::new(self.clone(), f, Pool::try_execute::<F>, Pool::execute::<F>)
    }
}

enum State<F, O> {
    Start { pool: AsyncPool, f: F },
    Waiting(oneshot::AsyncReceiver<Result<O, SubmitError<F>>>),
    Done,
}

/// The future of [`AsyncPool::spawn`] (`O` = [`TaskHandle`]) and [`AsyncPool::execute`]
/// (`O` = `()`): resolves once the pool accepted the job, or refused it for shutdown.
#[must_use = "a submit does nothing until awaited"]
pub struct Submit<F, O> {
    state: State<F, O>,
    try_now: fn(&Pool, F) -> Result<O, TrySubmitError<F>>,
    block: fn(&Pool, F) -> Result<O, SubmitError<F>>,
}

// The job is moved, never pinned: the future can be moved between polls.
impl<F, O> Unpin for Submit<F, O> {}

impl<F, O> std::fmt::Debug for Submit<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Start { .. } => "start",
            State::Waiting(_) => "waiting",
            State::Done => "done",
        };
        f.debug_struct("Submit").field("state", &state).finish()
    }
}

impl<F, O> Submit<F, O>
where
    F: Send + 'static,
    O: Send + 'static,
{
    fn new(
        pool: AsyncPool,
        f: F,
        try_now: fn(&Pool, F) -> Result<O, TrySubmitError<F>>,
        block: fn(&Pool, F) -> Result<O, SubmitError<F>>,
    ) -> Self {
        Submit {
            state: State::Start { pool, f },
            try_now,
            block,
        }
    }
}

impl<F, O> Future for Submit<F, O>
where
    F: Send + 'static,
    O: Send + 'static,
{
    type Output = Result<O, SubmitError<F>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Start { pool, f } => {
                    // Join the room's end while it holds jobs, so that they keep their turn.
                    let f = if pool.room.waiting.load(Acquire) == 0 {
                        match (this.try_now)(&pool.pool, f) {
                            Ok(o) => return Poll::Ready(Ok(o)),
                            Err(TrySubmitError::ShuttingDown(f)) => {
                                return Poll::Ready(Err(SubmitError::ShuttingDown(f)))
                            }
                            Err(TrySubmitError::Overloaded(f)) => f,
                        }
                    } else {
                        f
                    };
                    let (tx, rx) = oneshot::async_channel();
                    let block = this.block;
                    pool.room.enter(Box::new(move |p: &Pool| {
                        if !tx.is_closed() {
                            // If the future went away meanwhile, the outcome (a handle,
                            // which detaches, or the refused job) is dropped here.
                            let _ = tx.send(block(p, f));
                        }
                    }));
                    this.state = State::Waiting(rx);
                }
                State::Waiting(mut rx) => match Pin::new(&mut rx).poll(cx) {
                    Poll::Ready(Ok(outcome)) => return Poll::Ready(outcome),
                    Poll::Ready(Err(oneshot::RecvError)) => {
                        panic!("elastic-pool: a submit panicked in the async waiting room")
                    }
                    Poll::Pending => {
                        this.state = State::Waiting(rx);
                        return Poll::Pending;
                    }
                },
                State::Done => panic!("elastic-pool: `Submit` polled after it completed"),
            }
        }
    }
}
