//! `TaskHandle`: the result of a spawned task, by blocking `join` or as a `Future`.

use crate::error::JoinError;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

enum State<T> {
    Blocking(oneshot::Receiver<Result<T, JoinError>>),
    Async(oneshot::AsyncReceiver<Result<T, JoinError>>),
    Done,
}

/// The result of a task submitted with [`Pool::spawn`](crate::Pool::spawn).
///
/// * [`join`](TaskHandle::join) blocks the calling thread for the result;
/// * the handle is a [`Future`], usable from any executor, that never blocks the polling
///   thread;
/// * a panic in the task comes back as [`JoinError::Panicked`] with its payload, and a task
///   that never ran (returned by `shutdown_now` and dropped) as [`JoinError::Cancelled`]:
///   the caller is never left hanging.
///
/// Dropping the handle detaches the task; it still runs.
pub struct TaskHandle<T> {
    state: State<T>,
}

impl<T> std::fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

fn flatten<T>(r: Result<Result<T, JoinError>, oneshot::RecvError>) -> Result<T, JoinError> {
    match r {
        Ok(inner) => inner,
        // The sender was dropped without a value: the task was dropped unrun.
        Err(oneshot::RecvError) => Err(JoinError::Cancelled),
    }
}

impl<T> TaskHandle<T> {
    pub(crate) fn new(rx: oneshot::Receiver<Result<T, JoinError>>) -> Self {
        TaskHandle {
            state: State::Blocking(rx),
        }
    }

    /// Blocks until the task finishes and returns its value.
    ///
    /// # Errors
    /// [`JoinError::Panicked`] if the task panicked; [`JoinError::Cancelled`] if it was
    /// dropped without running.
    pub fn join(self) -> Result<T, JoinError> {
        match self.state {
            State::Blocking(rx) => flatten(rx.recv()),
            // Polled once as a future and then joined: finish the wait on this thread.
            State::Async(rx) => futures_lite_block_on(rx),
            State::Done => Err(JoinError::Cancelled),
        }
    }

    /// Waits at most `timeout`; gives the handle back if the task has not finished.
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, JoinError>, Self> {
        match self.state {
            State::Blocking(rx) => match rx.recv_timeout(timeout) {
                Ok(v) => Ok(v),
                Err(oneshot::RecvTimeoutError::Timeout) => Err(TaskHandle {
                    state: State::Blocking(rx),
                }),
                Err(oneshot::RecvTimeoutError::Disconnected) => Ok(Err(JoinError::Cancelled)),
            },
            other => Ok(TaskHandle { state: other }.join()),
        }
    }

    /// Whether the task has finished (its result is ready, or it will never run).
    pub fn is_finished(&self) -> bool {
        match &self.state {
            State::Blocking(rx) => rx.has_message() || rx.is_closed(),
            State::Async(rx) => rx.has_message() || rx.is_closed(),
            State::Done => true,
        }
    }
}

/// Finishes an async receive on the current thread. Used only when a handle that was
/// polled as a future is later joined; a tiny park-based executor keeps the dependency set
/// small.
fn futures_lite_block_on<T>(
    mut rx: oneshot::AsyncReceiver<Result<T, JoinError>>,
) -> Result<T, JoinError> {
    use std::sync::Arc;
    use std::task::Wake;
    struct Unparker(std::thread::Thread);
    impl Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unparker(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(r) = Pin::new(&mut rx).poll(&mut cx) {
            return flatten(r);
        }
        std::thread::park();
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let State::Blocking(_) = this.state {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Blocking(rx) => this.state = State::Async(rx.into_future()),
                _ => unreachable!(),
            }
        }
        match &mut this.state {
            State::Async(rx) => match Pin::new(rx).poll(cx) {
                Poll::Ready(r) => {
                    this.state = State::Done;
                    Poll::Ready(flatten(r))
                }
                Poll::Pending => Poll::Pending,
            },
            State::Done => Poll::Ready(Err(JoinError::Cancelled)),
            State::Blocking(_) => unreachable!(),
        }
    }
}
