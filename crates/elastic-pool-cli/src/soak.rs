//! `elastic-pool soak`: a long randomized run of every pool operation and fault, with the
//! pool's invariants checked continuously and at the end.
//!
//! # What runs
//!
//! The run is cut into *epochs* of about 30 s (at least two when the run lasts 6 s or more).
//! Each epoch builds a fresh autoscaled pool on one [`Controller`] shared by every epoch, and
//! several submitter threads run a random mix against it: `execute`, `try_execute`,
//! `execute_timeout`, `spawn` joined and awaited, `try_spawn`, batches, keyed submits, tasks
//! that submit to their own pool, `set_target`, `set_bounds` and `set_policy` (some of them
//! invalid on purpose), observations (`stats`, `metrics`, `decisions`, `tick_now`) and key
//! registration past `max_keys`. Tasks are no-ops, spins, sleeps, panics and blockers (held
//! for seconds). The pool's spawn hook refuses one thread start in 20, its panic handler
//! panics on one call in 8, and its thread start and stop hooks each panic once in 16.
//! Submitters alternate busy and calm spells of about 2 s, so the pool grows and shrinks.
//!
//! An epoch ends one of two ways, alternating, the last one always gracefully:
//! * `shutdown_now` racing the submitters (the jobs it hands back are run by the soak, and
//!   counted as returned);
//! * the submitters stop, the pool is left idle until its live workers and the process's
//!   thread count fall back, then `shutdown_timeout`.
//!
//! # What is checked
//!
//! Every task carries a token with a unique id. A table of 2^20 slots (indexed by the id)
//! records whether the task ran on a worker or was handed back to the soak (by a rejected
//! submit or by `shutdown_now`), so a task that runs twice, or is both run and handed back, is
//! caught; a token dropped without either is a lost task. After each epoch's shutdown the
//! soak's own counts must match the pool's `Stats` exactly (accepted, completed, rejected by
//! cause, returned, panicked, hook panics, spawn failures, per-key totals, thread starts and
//! stops), and no worker thread may be left (`/proc/self/status` Threads back to the
//! baseline). A monitor thread samples every 100 ms: live workers within the bounds in force
//! (allowing a busy worker to finish its task after a bound is lowered), a stall watchdog (no
//! task completed for 10 s with work queued, or one operation taking 10 s), RSS from
//! `/proc/self/statm` every second (memory must stay flat: the end of the run against its
//! warmed-up start) and the thread count. A hang of 60 s aborts the process with exit code 3
//! rather than hanging CI.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use elastic_pool::policy::Policy;
use elastic_pool::strategy::StrategyKind;
use elastic_pool::{
    Controller, JoinError, Key, Pool, SubmitTimeoutError, TaskHandle, TrySubmitError,
};
use serde::Serialize;

/// How long `elastic-pool soak` runs without `--duration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// Longest `--duration` accepted (a week).
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// No progress for this long is a stall.
pub const STALL_AFTER: Duration = Duration::from_secs(10);
/// A stall this long aborts the process (exit code 3) instead of hanging.
pub const HANG_ABORT: Duration = Duration::from_secs(60);

/// Every bound the soak sets stays at or below this many workers.
const HARD_MAX: usize = 16;
const QUEUE_CAPACITY: usize = 128;
const MAX_KEYS: usize = 8;
const KEYS: usize = 4;
/// Slots of the run-once table (ids are reused modulo this).
const WINDOW: usize = 1 << 20;
/// Most blocker tasks in flight at once.
const MAX_BLOCKERS: usize = 3;
/// Every `max` the soak sets leaves room for this many workers besides the blockers.
const LOW_MAX: usize = MAX_BLOCKERS + 3;
const BLOCK_MS: (u64, u64) = (1000, 3000);
/// Time a busy worker may stay above a lowered bound: the longest task plus slack.
const BOUND_GRACE: Duration = Duration::from_millis(BLOCK_MS.1 + 2000);
const EPOCH_TARGET: Duration = Duration::from_secs(30);
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(15);
const FALLBACK_LIMIT: Duration = Duration::from_secs(20);
const INJECTED: &str = "soak: injected";

/// What `soak` runs.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// Total wall time of the load (epochs' idle spells and shutdowns come out of it).
    pub duration: Duration,
    /// Seed of every random choice.
    pub seed: u64,
    /// Submitter threads.
    pub submitters: usize,
    /// Print a progress line to stderr every 10 s.
    pub progress: bool,
    /// Exit the process with code 3 on a hang of [`HANG_ABORT`] instead of waiting forever.
    pub abort_on_hang: bool,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            duration: DEFAULT_DURATION,
            seed: 1,
            submitters: 4,
            progress: false,
            abort_on_hang: true,
        }
    }
}

/// Parses a `--duration`: a number of seconds with an optional unit (`500ms`, `90`, `60s`,
/// `30m`, `2h`), above zero and at most a week.
///
/// # Errors
/// A message naming the value and what is expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let not_a_number = || {
        format!(
            "invalid duration `{text}`: expected a number of seconds with an optional unit \
             ms, s, m or h (e.g. 60s, 30m)"
        )
    };
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') {
        Some(i) => (t[..i].trim(), &t[i..]),
        None => (t, "s"),
    };
    if num.is_empty() {
        return Err(not_a_number());
    }
    let x: f64 = num.parse().map_err(|_| not_a_number())?;
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration `{text}`: unknown unit `{unit}`, expected ms, s, m or h \
                 (e.g. 60s, 30m)"
            ))
        }
    };
    if !x.is_finite() {
        return Err(format!(
            "invalid duration `{text}`: must be a finite number"
        ));
    }
    if x <= 0.0 {
        return Err(format!(
            "invalid duration `{text}`: must be greater than zero"
        ));
    }
    let secs = x * scale;
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "invalid duration `{text}`: at most {} s (a week) is accepted",
            MAX_DURATION.as_secs()
        ));
    }
    if secs < 0.001 {
        return Err(format!(
            "invalid duration `{text}`: at least 1 ms is needed"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What a soak run found. `ok` is false when any invariant failed; `failures` says which.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SoakReport {
    /// Every invariant held.
    pub ok: bool,
    /// What failed, one line each (at most 100 kept; `failure_count` has them all).
    pub failures: Vec<String>,
    /// How many invariant failures there were.
    pub failure_count: u64,
    /// Wall time of the whole run, seconds.
    pub duration_s: f64,
    /// `--duration`, seconds.
    pub requested_s: f64,
    /// The seed.
    pub seed: u64,
    /// Submitter threads.
    pub submitters: usize,
    /// Pools built and shut down (one per epoch).
    pub epochs: u64,
    /// Epochs that ended with `shutdown_now` racing the submitters.
    pub shutdown_now_epochs: u64,
    /// Operations the submitters performed (submits, resizes, swaps, observations).
    pub operations: u64,
    /// Tasks the pools accepted (each job of a batch counts).
    pub accepted: u64,
    /// Tasks that ran on a worker (including those that panicked).
    pub completed: u64,
    /// Tasks refused, each handed back to the submitter.
    pub rejected: u64,
    /// Refused because the queue was full or stayed full until a timeout.
    pub rejected_overloaded: u64,
    /// Refused because the pool was shutting down.
    pub rejected_shutdown: u64,
    /// Tasks handed back unrun by `shutdown_now`.
    pub returned: u64,
    /// Tasks the soak ran after they were handed back (rejected + returned).
    pub handed_back: u64,
    /// Accepted tasks neither completed nor returned. Must be 0.
    pub lost: u64,
    /// Tasks run (or handed back) twice. Must be 0.
    pub duplicated: u64,
    /// Task closures dropped without running or being handed back. Must be 0.
    pub dropped_unrun: u64,
    /// Tasks whose run-once slot had been reused before they finished (not checkable).
    pub unverified: u64,
    /// Tasks that panicked on a worker.
    pub panics: u64,
    /// Panics injected into the panic handler and the thread start and stop hooks.
    pub hook_panics: u64,
    /// Thread starts the spawn hook refused.
    pub spawn_refusals: u64,
    /// Spawned tasks joined with `join`.
    pub spawn_joins: u64,
    /// Spawned tasks awaited as futures.
    pub spawn_awaits: u64,
    /// Batches submitted.
    pub batches: u64,
    /// Keyed submits.
    pub keyed: u64,
    /// Tasks that submitted to their own pool.
    pub nested: u64,
    /// Bursts of 50–300 non-blocking submits.
    pub floods: u64,
    /// Blocker tasks (held for seconds).
    pub blockers: u64,
    /// `set_target` and `set_bounds` calls.
    pub resizes: u64,
    /// Invalid `set_bounds` calls, each refused naming the field.
    pub bound_errors: u64,
    /// Valid policy swaps.
    pub policy_swaps: u64,
    /// Invalid policy swaps, each refused naming the field.
    pub policy_rejected: u64,
    /// Key registrations refused with `KeysFull`.
    pub keys_full: u64,
    /// Most live workers seen.
    pub max_live: usize,
    /// Samples with more live workers than the bounds allow.
    pub bound_violations: u64,
    /// RSS at the start, MiB.
    pub rss_start_mb: f64,
    /// Highest RSS over the warm-up part of the run, MiB.
    pub rss_warm_mb: f64,
    /// Highest RSS over the last fifth of the run, MiB.
    pub rss_end_mb: f64,
    /// `rss_end_mb − rss_warm_mb`.
    pub rss_growth_mb: f64,
    /// Highest RSS seen, MiB.
    pub max_rss_mb: f64,
    /// Threads of the process before the first pool (the soak's own).
    pub baseline_threads: u64,
    /// Most threads seen.
    pub max_threads: u64,
    /// Threads left over after a pool shut down (summed over epochs, plus the controller's
    /// at the end). Must be 0.
    pub leaked_threads: u64,
    /// Longest time for live workers and the thread count to fall back after load, seconds.
    pub thread_fallback_max_s: f64,
    /// Longest shutdown, milliseconds.
    pub shutdown_max_ms: f64,
    /// Stalls the watchdog flagged. Must be 0.
    pub stalls: u64,
}

// ----- counters ----------------------------------------------------------------------------

/// The soak's own counters, one array per epoch.
#[derive(Clone, Copy)]
enum C {
    Accepted,
    Rejected,
    RejectedOverloaded,
    RejectedShutdown,
    Returned,
    Ran,
    HandedBack,
    DroppedUnrun,
    Duplicated,
    Unverified,
    PanicsRan,
    SpawnPanicsJoined,
    HandlerCalls,
    InjectedHookPanics,
    SpawnRefused,
    SpawnHookCalls,
    ThreadStarts,
    ThreadStops,
    KeyedAccepted,
    KeyedRejected,
    Operations,
    SpawnJoins,
    SpawnAwaits,
    Batches,
    Keyed,
    Nested,
    Floods,
    Blockers,
    Resizes,
    BoundErrors,
    PolicySwaps,
    PolicyRejected,
    KeysFull,
}
const NC: usize = C::KeysFull as usize + 1;

struct Counters([AtomicU64; NC]);

impl Counters {
    fn new() -> Self {
        Counters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
    fn add(&self, c: C, n: u64) {
        self.0[c as usize].fetch_add(n, Relaxed);
    }
    fn get(&self, c: C) -> u64 {
        self.0[c as usize].load(SeqCst)
    }
    fn snapshot(&self) -> [u64; NC] {
        std::array::from_fn(|i| self.0[i].load(SeqCst))
    }
}

/// Invariant failures, shared by every thread.
#[derive(Default)]
struct Failures {
    list: Mutex<Vec<String>>,
    count: AtomicU64,
}

impl Failures {
    fn push(&self, msg: String) {
        self.count.fetch_add(1, Relaxed);
        let mut l = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if l.len() < 100 {
            l.push(msg);
        }
    }
}

// ----- the run-once table ------------------------------------------------------------------

const PENDING: u64 = 1;
const RAN: u64 = 2;
const BACK: u64 = 3;

/// One slot per task id modulo [`WINDOW`]: `id << 2 | state`.
struct Tracker {
    slots: Box<[AtomicU64]>,
    next: AtomicU64,
}

enum Finish {
    Ok,
    Twice,
    Unverified,
}

impl Tracker {
    fn new() -> Self {
        let slots: Box<[AtomicU64]> = (0..WINDOW).map(|_| AtomicU64::new(0)).collect();
        // Touch every page now, so that the table does not show up as growth later.
        for s in slots.iter() {
            s.store(0, Relaxed);
        }
        Tracker {
            slots,
            next: AtomicU64::new(1),
        }
    }
    fn open(&self) -> u64 {
        let id = self.next.fetch_add(1, Relaxed);
        self.slots[id as usize & (WINDOW - 1)].store(id << 2 | PENDING, Release);
        id
    }
    fn finish(&self, id: u64, state: u64) -> Finish {
        let slot = &self.slots[id as usize & (WINDOW - 1)];
        match slot.compare_exchange(id << 2 | PENDING, id << 2 | state, AcqRel, Acquire) {
            Ok(_) => Finish::Ok,
            Err(cur) if cur >> 2 == id => Finish::Twice,
            Err(_) => Finish::Unverified,
        }
    }
}

// ----- tasks -------------------------------------------------------------------------------

thread_local! {
    /// Set while the soak runs a job that the pool handed back.
    static HANDED_BACK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` as "handed back": tasks record that instead of running.
fn hand_back<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            HANDED_BACK.with(|h| h.set(false));
        }
    }
    HANDED_BACK.with(|h| h.set(true));
    let _reset = Reset;
    f()
}

/// Everything one epoch's tasks and hooks share.
struct Ctx {
    epoch: u64,
    tracker: Arc<Tracker>,
    c: Counters,
    failures: Arc<Failures>,
    blockers: AtomicUsize,
    released: Mutex<bool>,
    release_cv: Condvar,
}

impl Ctx {
    fn fail(&self, msg: String) {
        self.failures.push(format!("epoch {}: {msg}", self.epoch));
    }
    fn release_blockers(&self) {
        *self.released.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.release_cv.notify_all();
    }
    fn block(&self, d: Duration) {
        let end = Instant::now() + d;
        let mut g = self.released.lock().unwrap_or_else(|p| p.into_inner());
        while !*g {
            let now = Instant::now();
            if now >= end {
                break;
            }
            g = self
                .release_cv
                .wait_timeout(g, end - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// A task's identity: it must be fired exactly once, on a worker or handed back.
struct Token {
    id: u64,
    ctx: Arc<Ctx>,
    fired: bool,
    blocker: bool,
}

impl Token {
    fn new(ctx: &Arc<Ctx>, blocker: bool) -> Token {
        Token {
            id: ctx.tracker.open(),
            ctx: Arc::clone(ctx),
            fired: false,
            blocker,
        }
    }

    /// Records the run; returns true on a worker, false when handed back.
    fn fire(&mut self) -> bool {
        self.fired = true;
        let back = HANDED_BACK.with(Cell::get);
        let (state, c) = if back {
            (BACK, C::HandedBack)
        } else {
            (RAN, C::Ran)
        };
        match self.ctx.tracker.finish(self.id, state) {
            Finish::Ok => {}
            Finish::Twice => {
                self.ctx.c.add(C::Duplicated, 1);
                self.ctx
                    .fail(format!("task {} ran or came back twice", self.id));
            }
            Finish::Unverified => self.ctx.c.add(C::Unverified, 1),
        }
        self.ctx.c.add(c, 1);
        !back
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if !self.fired {
            self.ctx.c.add(C::DroppedUnrun, 1);
            self.ctx.fail(format!(
                "task {} was dropped without running or being handed back",
                self.id
            ));
        }
        if self.blocker {
            self.ctx.blockers.fetch_sub(1, AcqRel);
        }
    }
}

#[derive(Clone, Copy)]
enum Work {
    Noop,
    Spin(Duration),
    Sleep(Duration),
    Panic,
    Block(Duration),
}

fn spin(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

fn perform(w: Work, ctx: &Ctx) {
    match w {
        Work::Noop => {}
        Work::Spin(d) => spin(d),
        Work::Sleep(d) => std::thread::sleep(d),
        Work::Block(d) => ctx.block(d),
        Work::Panic => {
            ctx.c.add(C::PanicsRan, 1);
            panic!("soak: injected task panic");
        }
    }
}

/// Which kinds of work a task may be given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mix {
    /// No-ops, short spins and panics (batch jobs, floods).
    Cheap,
    /// Also sleeps of a few milliseconds (tasks that are joined).
    Short,
    /// Also blockers, held for seconds (fire-and-forget tasks).
    Any,
}

/// Picks what a task does.
fn pick_work(rng: &mut Rng, ctx: &Ctx, mix: Mix) -> (Work, bool) {
    let r = rng.below(100);
    let w = match r {
        0..=59 => Work::Noop,
        60..=74 => Work::Spin(Duration::from_micros(rng.range(20, 500))),
        75..=82 => Work::Panic,
        _ if mix == Mix::Cheap => Work::Noop,
        83..=96 => Work::Sleep(Duration::from_millis(rng.range(1, 10))),
        _ if mix == Mix::Short => Work::Sleep(Duration::from_millis(rng.range(1, 10))),
        _ => {
            if ctx.blockers.fetch_add(1, AcqRel) < MAX_BLOCKERS {
                ctx.c.add(C::Blockers, 1);
                return (
                    Work::Block(Duration::from_millis(rng.range(BLOCK_MS.0, BLOCK_MS.1))),
                    true,
                );
            }
            ctx.blockers.fetch_sub(1, AcqRel);
            Work::Sleep(Duration::from_millis(rng.range(1, 10)))
        }
    };
    (w, false)
}

/// A task returning its id; also tells whether it will panic when run on a worker.
fn job(
    ctx: &Arc<Ctx>,
    rng: &mut Rng,
    mix: Mix,
) -> (impl FnOnce() -> u64 + Send + 'static, u64, bool) {
    let (work, blocker) = pick_work(rng, ctx, mix);
    let mut token = Token::new(ctx, blocker);
    let id = token.id;
    let panics = matches!(work, Work::Panic);
    let f = move || {
        if token.fire() {
            perform(work, &token.ctx);
        }
        token.id
    };
    (f, id, panics)
}

fn unit_job(ctx: &Arc<Ctx>, rng: &mut Rng, mix: Mix) -> impl FnOnce() + Send + 'static {
    let (f, _, _) = job(ctx, rng, mix);
    move || {
        f();
    }
}

// ----- a minimal executor for awaiting handles ---------------------------------------------

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

// ----- randomness --------------------------------------------------------------------------

/// xorshift64* seeded through splitmix64: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

// ----- /proc -------------------------------------------------------------------------------

/// The process's thread count (`/proc/self/status`, `Threads:`).
fn proc_threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The page size, from the auxiliary vector (`AT_PAGESZ`); 4 KiB if it cannot be read.
fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        const AT_PAGESZ: u64 = 6;
        let Ok(aux) = std::fs::read("/proc/self/auxv") else {
            return 4096;
        };
        aux.chunks_exact(16)
            .map(|c| {
                let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
                (word(&c[..8]), word(&c[8..]))
            })
            .find(|&(k, _)| k == AT_PAGESZ)
            .map_or(4096, |(_, v)| v)
    })
}

/// Resident set size in bytes (`/proc/self/statm`, second field).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * page_size())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ----- policies ----------------------------------------------------------------------------

/// The policy every epoch starts with and returns to before its idle spell.
fn base_policy() -> Policy {
    Policy {
        min_workers: 1,
        max_workers: HARD_MAX,
        tick_ms: 50.0,
        scale_down_window_s: 1.0,
        keep_alive_s: 0.5,
        starvation_ms: 200.0,
        rate_tau_s: 1.0,
        service_tau_s: 1.0,
        min_wait_samples: 20,
        ..Policy::default()
    }
}

fn random_policy(rng: &mut Rng) -> Policy {
    let min = rng.below(3) as usize;
    let max = rng.range(LOW_MAX as u64, HARD_MAX as u64 + 1) as usize;
    Policy {
        min_workers: min,
        max_workers: max,
        tick_ms: rng.between(20.0, 200.0),
        scale_down_window_s: rng.between(0.2, 3.0),
        keep_alive_s: rng.between(0.2, 2.0),
        starvation_ms: rng.between(50.0, 500.0),
        rate_tau_s: rng.between(0.5, 5.0),
        service_tau_s: rng.between(0.5, 5.0),
        min_wait_samples: rng.range(10, 200),
        strategy: StrategyKind::ALL[rng.below(3) as usize],
        ..Policy::default()
    }
}

/// A policy with one field broken, and the field the error must name.
fn invalid_policy(rng: &mut Rng) -> (Policy, &'static str) {
    let mut p = random_policy(rng);
    let bad = [f64::NAN, -1.0, 0.0, f64::INFINITY, f64::NEG_INFINITY];
    let pick = |rng: &mut Rng| bad[rng.below(bad.len() as u64) as usize];
    let field = match rng.below(14) {
        0 => {
            p.tick_ms = if rng.below(2) == 0 { pick(rng) } else { 1e9 };
            "tick_ms"
        }
        1 => {
            p.target_p99_wait_ms = pick(rng);
            "target_p99_wait_ms"
        }
        2 => {
            p.max_workers = if rng.below(2) == 0 { 0 } else { 1 << 40 };
            "max_workers"
        }
        3 => {
            p.max_workers = rng.range(1, HARD_MAX as u64) as usize;
            p.min_workers = p.max_workers + 1 + rng.below(8) as usize;
            "min_workers"
        }
        4 => {
            p.keep_alive_s = [f64::NAN, -1.0, f64::INFINITY][rng.below(3) as usize];
            "keep_alive_s"
        }
        5 => {
            p.scale_down_window_s = [f64::NAN, -0.5, f64::INFINITY][rng.below(3) as usize];
            "scale_down_window_s"
        }
        6 => {
            p.tick_jitter = 0.9;
            "tick_jitter"
        }
        7 => {
            p.wait_sample_every = 0;
            "wait_sample_every"
        }
        8 => {
            p.min_wait_samples = 0;
            "min_wait_samples"
        }
        9 => {
            p.cpu_busy_ratio = 1.5;
            "cpu_busy_ratio"
        }
        10 => {
            p.erlang.trim_factor = 1.0;
            "erlang.trim_factor"
        }
        11 => {
            p.queue_wait.hold_low = -0.1;
            "queue_wait.hold_low"
        }
        12 => {
            p.hill_climb.probe_step = 0;
            "hill_climb.probe_step"
        }
        _ => {
            p.starvation_ms = pick(rng);
            "starvation_ms"
        }
    };
    (p, field)
}

// ----- shared state between the run, the submitters and the monitor -----------------------

struct Monitor {
    start: Instant,
    failures: Arc<Failures>,
    done: AtomicBool,
    pool: Mutex<Option<Pool>>,
    ctx: Mutex<Option<Arc<Ctx>>>,
    /// When each submitter's current operation began (ms since start), `u64::MAX` when idle.
    beats: Mutex<Vec<Arc<AtomicU64>>>,
    /// Bounds set recently: (when, max). A lowered bound binds only after [`BOUND_GRACE`].
    ceilings: Mutex<VecDeque<(Instant, usize)>>,
    totals: Mutex<[u64; NC]>,
    stalls: AtomicU64,
    bound_violations: AtomicU64,
    max_live: AtomicUsize,
    max_threads: AtomicU64,
    max_rss: AtomicU64,
    rss_samples: Mutex<Vec<(f64, u64)>>,
    progress: bool,
    abort_on_hang: bool,
    duration: Duration,
}

impl Monitor {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn log_ceiling(&self, max: usize) {
        let mut c = self.ceilings.lock().unwrap_or_else(|p| p.into_inner());
        c.push_back((Instant::now(), max));
    }

    /// The most workers allowed now: the bound in force (`in_force`), or a higher one set
    /// within the grace period (a busy worker retires only after its task).
    fn allowed(&self, in_force: usize) -> usize {
        let mut c = self.ceilings.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while c
            .front()
            .is_some_and(|&(t, _)| now.duration_since(t) > BOUND_GRACE)
        {
            c.pop_front();
        }
        c.iter().map(|&(_, m)| m).fold(in_force, usize::max)
    }

    fn sample_rss(&self) {
        let rss = rss_bytes();
        self.max_rss.fetch_max(rss, Relaxed);
        self.max_threads.fetch_max(proc_threads(), Relaxed);
        self.rss_samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((self.start.elapsed().as_secs_f64(), rss));
    }

    fn counts(&self) -> [u64; NC] {
        let mut t = *self.totals.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ctx) = self.ctx.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            for (a, b) in t.iter_mut().zip(ctx.c.snapshot()) {
                *a += b;
            }
        }
        t
    }

    /// The monitor thread: bounds, watchdog, RSS and threads, progress.
    fn run(self: Arc<Self>) {
        let tick = Duration::from_millis(100);
        let mut last_completed = u64::MAX;
        let mut last_change = Instant::now();
        let mut queue_stall = false;
        let mut beat_seen: Vec<(u64, bool)> = Vec::new();
        let mut next_rss = Instant::now();
        let mut next_progress = Instant::now() + Duration::from_secs(10);
        let mut hang_since: Option<Instant> = None;
        while !self.done.load(Acquire) {
            std::thread::sleep(tick);
            let now = Instant::now();
            let mut stalled = false;
            let pool = self.pool.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(pool) = pool {
                let s = pool.stats();
                self.max_live.fetch_max(s.live, Relaxed);
                let allowed = self.allowed(s.max);
                if s.live > HARD_MAX || (s.live > allowed && !pool.is_shutdown()) {
                    self.bound_violations.fetch_add(1, Relaxed);
                    self.failures.push(format!(
                        "{} live workers with at most {allowed} allowed (stats {s:?})",
                        s.live
                    ));
                }
                if s.completed != last_completed || s.queued == 0 {
                    last_completed = s.completed;
                    last_change = now;
                    queue_stall = false;
                } else if now - last_change >= STALL_AFTER {
                    stalled = true;
                    if !queue_stall {
                        queue_stall = true;
                        self.stalls.fetch_add(1, Relaxed);
                        self.failures.push(format!(
                            "stall: no task completed for {} s with {} queued (stats {s:?})",
                            STALL_AFTER.as_secs(),
                            s.queued
                        ));
                    }
                }
            } else {
                last_completed = u64::MAX;
                last_change = now;
                queue_stall = false;
            }
            let beats: Vec<u64> = self
                .beats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|b| b.load(Acquire))
                .collect();
            beat_seen.resize(beats.len(), (u64::MAX, false));
            let now_ms = self.now_ms();
            for (i, &b) in beats.iter().enumerate() {
                if b != beat_seen[i].0 {
                    beat_seen[i] = (b, false);
                }
                if b != u64::MAX && now_ms.saturating_sub(b) >= STALL_AFTER.as_millis() as u64 {
                    stalled = true;
                    if !beat_seen[i].1 {
                        beat_seen[i].1 = true;
                        self.stalls.fetch_add(1, Relaxed);
                        self.failures.push(format!(
                            "stall: {} stuck in one operation for {} s",
                            if i == 0 {
                                "the soak's main thread".to_string()
                            } else {
                                format!("submitter {i}")
                            },
                            STALL_AFTER.as_secs()
                        ));
                    }
                }
            }
            if stalled {
                let since = *hang_since.get_or_insert(now);
                if self.abort_on_hang && now - since >= HANG_ABORT - STALL_AFTER {
                    self.abort("a stall lasted 60 s");
                }
            } else {
                hang_since = None;
            }
            if self.abort_on_hang
                && self.start.elapsed() > self.duration + 2 * FALLBACK_LIMIT + 2 * HANG_ABORT
            {
                self.abort("the run overran its duration by more than 3 minutes");
            }
            if now >= next_rss {
                next_rss = now + Duration::from_secs(1);
                self.sample_rss();
            }
            if self.progress && now >= next_progress {
                next_progress = now + Duration::from_secs(10);
                let t = self.counts();
                eprintln!(
                    "soak {:>6.0} s / {:.0} s  ops {}  accepted {}  completed {}  rejected {}  \
                     returned {}  rss {:.1} MiB  threads {}  stalls {}  failures {}",
                    self.start.elapsed().as_secs_f64(),
                    self.duration.as_secs_f64(),
                    t[C::Operations as usize],
                    t[C::Accepted as usize],
                    t[C::Ran as usize],
                    t[C::Rejected as usize],
                    t[C::Returned as usize],
                    mb(rss_bytes()),
                    proc_threads(),
                    self.stalls.load(Relaxed),
                    self.failures.count.load(Relaxed),
                );
            }
        }
    }

    fn abort(&self, why: &str) -> ! {
        let stats = self
            .pool
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| format!("{:?}", p.stats())))
            .unwrap_or_default();
        eprintln!("soak: aborting: {why}; pool {stats}");
        if let Ok(l) = self.failures.list.lock() {
            for f in l.iter() {
                eprintln!("  {f}");
            }
        }
        std::process::exit(3);
    }
}

// ----- submitters --------------------------------------------------------------------------

struct Submitter {
    idx: usize,
    pool: Pool,
    ctx: Arc<Ctx>,
    keys: Vec<Key>,
    stop: Arc<AtomicBool>,
    beat: Arc<AtomicU64>,
    mon: Arc<Monitor>,
    rng: Rng,
}

impl Submitter {
    fn run(mut self) {
        let mut calm = self.rng.below(2) == 0;
        let mut spell_end = Instant::now() + Duration::from_millis(self.rng.range(1000, 3000));
        while !self.stop.load(Acquire) && !self.pool.is_shutdown() {
            self.beat.store(self.mon.now_ms(), Release);
            self.one_op();
            self.beat.store(u64::MAX, Release);
            self.ctx.c.add(C::Operations, 1);
            if calm {
                std::thread::sleep(Duration::from_micros(self.rng.range(200, 3000)));
            }
            if Instant::now() >= spell_end {
                calm = !calm;
                spell_end = Instant::now() + Duration::from_millis(self.rng.range(1000, 3000));
            }
        }
        self.beat.store(u64::MAX, Release);
    }

    fn accepted(&self, n: u64, keyed: bool) {
        self.ctx.c.add(C::Accepted, n);
        if keyed {
            self.ctx.c.add(C::KeyedAccepted, n);
        }
    }

    fn rejected(&self, n: u64, overloaded: bool, keyed: bool) {
        self.ctx.c.add(C::Rejected, n);
        self.ctx.c.add(
            if overloaded {
                C::RejectedOverloaded
            } else {
                C::RejectedShutdown
            },
            n,
        );
        if keyed {
            self.ctx.c.add(C::KeyedRejected, n);
        }
    }

    fn check_join(&self, r: Result<u64, JoinError>, id: u64, panics: bool) {
        match r {
            Ok(v) if v == id => {}
            Ok(v) => self.ctx.fail(format!(
                "handle of task {id} returned the value of task {v}"
            )),
            Err(JoinError::Panicked(p)) => {
                let injected = p
                    .downcast_ref::<&str>()
                    .is_some_and(|m| m.starts_with(INJECTED));
                if panics && injected {
                    self.ctx.c.add(C::SpawnPanicsJoined, 1);
                } else {
                    self.ctx
                        .fail(format!("task {id} reported a panic it did not raise"));
                }
            }
            Err(JoinError::Cancelled) => self.ctx.fail(format!(
                "task {id} was cancelled, but the soak drops no handed-back job"
            )),
        }
    }

    fn one_op(&mut self) {
        let ctx = Arc::clone(&self.ctx);
        let r = self.rng.below(100);
        match r {
            0..=19 => {
                let f = unit_job(&ctx, &mut self.rng, Mix::Any);
                match self.pool.execute(f) {
                    Ok(()) => self.accepted(1, false),
                    Err(e) => {
                        self.rejected(1, false, false);
                        hand_back(e.into_inner());
                    }
                }
            }
            20..=31 => {
                let f = unit_job(&ctx, &mut self.rng, Mix::Any);
                match self.pool.try_execute(f) {
                    Ok(()) => self.accepted(1, false),
                    Err(TrySubmitError::Overloaded(f)) => {
                        self.rejected(1, true, false);
                        hand_back(f);
                    }
                    Err(TrySubmitError::ShuttingDown(f)) => {
                        self.rejected(1, false, false);
                        hand_back(f);
                    }
                }
            }
            32..=38 => {
                let f = unit_job(&ctx, &mut self.rng, Mix::Any);
                let t = Duration::from_micros(self.rng.below(5000));
                match self.pool.execute_timeout(f, t) {
                    Ok(()) => self.accepted(1, false),
                    Err(SubmitTimeoutError::Timeout(f)) => {
                        self.rejected(1, true, false);
                        hand_back(f);
                    }
                    Err(SubmitTimeoutError::ShuttingDown(f)) => {
                        self.rejected(1, false, false);
                        hand_back(f);
                    }
                }
            }
            39..=45 => {
                let awaited = r >= 43;
                let (f, id, panics) = job(&ctx, &mut self.rng, Mix::Short);
                match self.pool.spawn(f) {
                    Ok(h) => {
                        self.accepted(1, false);
                        let out = if awaited {
                            ctx.c.add(C::SpawnAwaits, 1);
                            block_on(h)
                        } else {
                            ctx.c.add(C::SpawnJoins, 1);
                            h.join()
                        };
                        self.check_join(out, id, panics);
                    }
                    Err(e) => {
                        self.rejected(1, false, false);
                        hand_back(e.into_inner());
                    }
                }
            }
            46..=47 => {
                let (f, id, panics) = job(&ctx, &mut self.rng, Mix::Short);
                match self.pool.try_spawn(f) {
                    Ok(h) => {
                        self.accepted(1, false);
                        ctx.c.add(C::SpawnJoins, 1);
                        let h: TaskHandle<u64> = h;
                        self.check_join(h.join(), id, panics);
                    }
                    Err(TrySubmitError::Overloaded(f)) => {
                        self.rejected(1, true, false);
                        hand_back(f);
                    }
                    Err(TrySubmitError::ShuttingDown(f)) => {
                        self.rejected(1, false, false);
                        hand_back(f);
                    }
                }
            }
            48..=52 => {
                let n = self.rng.range(1, 65);
                let jobs: Vec<_> = (0..n)
                    .map(|_| unit_job(&ctx, &mut self.rng, Mix::Cheap))
                    .collect();
                ctx.c.add(C::Batches, 1);
                match self.pool.execute_batch(jobs) {
                    Ok(()) => self.accepted(n, false),
                    Err(e) => {
                        let rest = e.into_inner();
                        let k = rest.len() as u64;
                        self.accepted(n - k, false);
                        self.rejected(k, false, false);
                        hand_back(|| rest.into_iter().for_each(|f| f()));
                    }
                }
            }
            53..=59 => {
                let key = self.keys[self.rng.below(self.keys.len() as u64) as usize];
                let f = unit_job(&ctx, &mut self.rng, Mix::Any);
                ctx.c.add(C::Keyed, 1);
                if r % 2 == 0 {
                    match self.pool.execute_keyed(key, f) {
                        Ok(()) => self.accepted(1, true),
                        Err(e) => {
                            self.rejected(1, false, true);
                            hand_back(e.into_inner());
                        }
                    }
                } else {
                    match self.pool.try_execute_keyed(key, f) {
                        Ok(()) => self.accepted(1, true),
                        Err(TrySubmitError::Overloaded(f)) => {
                            self.rejected(1, true, true);
                            hand_back(f);
                        }
                        Err(TrySubmitError::ShuttingDown(f)) => {
                            self.rejected(1, false, true);
                            hand_back(f);
                        }
                    }
                }
            }
            60..=63 => {
                let f = self.nested();
                ctx.c.add(C::Nested, 1);
                match self.pool.try_execute(f) {
                    Ok(()) => self.accepted(1, false),
                    Err(TrySubmitError::Overloaded(f)) => {
                        self.rejected(1, true, false);
                        hand_back(f);
                    }
                    Err(TrySubmitError::ShuttingDown(f)) => {
                        self.rejected(1, false, false);
                        hand_back(f);
                    }
                }
            }
            64..=66 => self.flood(),
            67..=70 => {
                ctx.c.add(C::Resizes, 1);
                let want = self.rng.below(HARD_MAX as u64 + 5) as usize;
                let got = self.pool.set_target(want);
                if got == 0 || got > HARD_MAX {
                    ctx.fail(format!(
                        "set_target({want}) gave {got}, outside [1, {HARD_MAX}]"
                    ));
                }
            }
            71..=72 => self.bounds(),
            73..=74 => self.policy(),
            75..=78 => {
                let s = self.pool.stats();
                let m = self.pool.metrics();
                let _ = self.pool.decisions();
                let _ = self.pool.tick_now();
                let _ = self.pool.demand_workers();
                if m.window.live > HARD_MAX || s.target > HARD_MAX || s.max > HARD_MAX {
                    ctx.fail(format!("observed a size above {HARD_MAX}: {s:?}"));
                }
            }
            79 => {
                let name = format!("extra-{}", self.rng.below(2 * MAX_KEYS as u64));
                match self.pool.key(&name) {
                    Ok(k) if k.index() < MAX_KEYS => {}
                    Ok(k) => ctx.fail(format!("key index {} past max_keys", k.index())),
                    Err(e) if e.capacity == MAX_KEYS => ctx.c.add(C::KeysFull, 1),
                    Err(e) => ctx.fail(format!("KeysFull names capacity {}", e.capacity)),
                }
            }
            _ => {
                // A plain fire-and-forget no-op: the cheapest path, most of the traffic.
                let mut token = Token::new(&ctx, false);
                let f = move || {
                    token.fire();
                };
                match self.pool.try_execute(f) {
                    Ok(()) => self.accepted(1, false),
                    Err(TrySubmitError::Overloaded(f)) => {
                        self.rejected(1, true, false);
                        hand_back(f);
                    }
                    Err(TrySubmitError::ShuttingDown(f)) => {
                        self.rejected(1, false, false);
                        hand_back(f);
                    }
                }
            }
        }
    }

    /// A burst of non-blocking submits of cheap tasks, enough to fill the queue.
    fn flood(&mut self) {
        let ctx = Arc::clone(&self.ctx);
        ctx.c.add(C::Floods, 1);
        for _ in 0..self.rng.range(50, 300) {
            let f = unit_job(&ctx, &mut self.rng, Mix::Cheap);
            match self.pool.try_execute(f) {
                Ok(()) => self.accepted(1, false),
                Err(TrySubmitError::Overloaded(f)) => {
                    self.rejected(1, true, false);
                    hand_back(f);
                }
                Err(TrySubmitError::ShuttingDown(f)) => {
                    self.rejected(1, false, false);
                    hand_back(f);
                    return;
                }
            }
        }
    }

    /// A task that submits to its own pool the documented way: `try_execute`, and run the
    /// job inline if the pool is overloaded.
    fn nested(&mut self) -> impl FnOnce() + Send + 'static {
        let pool = self.pool.clone();
        let ctx = Arc::clone(&self.ctx);
        let mut token = Token::new(&ctx, false);
        let seed = self.rng.next();
        move || {
            if !token.fire() {
                return;
            }
            let mut rng = Rng::new(seed);
            let child = unit_job(&ctx, &mut rng, Mix::Cheap);
            match pool.try_execute(child) {
                Ok(()) => ctx.c.add(C::Accepted, 1),
                Err(e) => {
                    let overloaded = matches!(e, TrySubmitError::Overloaded(_));
                    ctx.c.add(C::Rejected, 1);
                    ctx.c.add(
                        if overloaded {
                            C::RejectedOverloaded
                        } else {
                            C::RejectedShutdown
                        },
                        1,
                    );
                    hand_back(e.into_inner());
                }
            }
        }
    }

    fn bounds(&mut self) {
        let ctx = &self.ctx;
        ctx.c.add(C::Resizes, 1);
        match self.rng.below(10) {
            0 => {
                let e = self.pool.set_bounds(self.rng.below(3) as usize, 0);
                match e {
                    Err(e) if e.field == "max_workers" => ctx.c.add(C::BoundErrors, 1),
                    other => ctx.fail(format!("set_bounds(_, 0) gave {other:?}")),
                }
            }
            1 => {
                let max = self.rng.range(1, HARD_MAX as u64) as usize;
                let min = max + 1 + self.rng.below(4) as usize;
                match self.pool.set_bounds(min, max) {
                    Err(e) if e.field == "min_workers" => ctx.c.add(C::BoundErrors, 1),
                    other => ctx.fail(format!("set_bounds({min}, {max}) gave {other:?}")),
                }
            }
            _ => {
                let min = self.rng.below(4) as usize;
                let max = self.rng.range(LOW_MAX as u64, HARD_MAX as u64 + 1) as usize;
                self.mon.log_ceiling(max);
                if let Err(e) = self.pool.set_bounds(min, max) {
                    ctx.fail(format!("set_bounds({min}, {max}) refused: {e}"));
                }
            }
        }
    }

    fn policy(&mut self) {
        let ctx = &self.ctx;
        if self.rng.below(10) < 7 {
            let p = random_policy(&mut self.rng);
            self.mon.log_ceiling(p.max_workers);
            match self.pool.set_policy(p) {
                Ok(()) => ctx.c.add(C::PolicySwaps, 1),
                Err(e) => ctx.fail(format!("a valid policy was refused: {e}")),
            }
        } else {
            let (p, field) = invalid_policy(&mut self.rng);
            match self.pool.set_policy(p) {
                Err(e) if e.field() == Some(field) && e.to_string().contains(field) => {
                    ctx.c.add(C::PolicyRejected, 1)
                }
                Err(e) => ctx.fail(format!(
                    "an invalid `{field}` was refused naming {:?}: {e}",
                    e.field()
                )),
                Ok(()) => ctx.fail(format!("an invalid `{field}` was accepted")),
            }
        }
    }
}

// ----- one epoch ---------------------------------------------------------------------------

struct EpochResult {
    leaked_threads: u64,
    fallback_s: f64,
    shutdown_ms: f64,
}

fn build_pool(ctl: &Controller, ctx: &Arc<Ctx>) -> Pool {
    let (h, s1, s2, sp) = (
        Arc::clone(ctx),
        Arc::clone(ctx),
        Arc::clone(ctx),
        Arc::clone(ctx),
    );
    Pool::builder()
        .controller(ctl)
        .autoscale(base_policy())
        .queue_capacity(QUEUE_CAPACITY)
        .max_keys(MAX_KEYS)
        .thread_name("soak-worker")
        .panic_handler(move |p| {
            let n = h.c.0[C::HandlerCalls as usize].fetch_add(1, Relaxed);
            let injected = p
                .downcast_ref::<&str>()
                .is_some_and(|m| m.starts_with(INJECTED));
            if !injected {
                h.fail("the panic handler got a payload the soak did not raise".into());
            }
            if n % 8 == 3 {
                h.c.add(C::InjectedHookPanics, 1);
                panic!("soak: injected panic-handler panic");
            }
        })
        .on_thread_start(move || {
            let n = s1.c.0[C::ThreadStarts as usize].fetch_add(1, Relaxed);
            if n % 16 == 5 {
                s1.c.add(C::InjectedHookPanics, 1);
                panic!("soak: injected start-hook panic");
            }
        })
        .on_thread_stop(move || {
            let n = s2.c.0[C::ThreadStops as usize].fetch_add(1, Relaxed);
            if n % 16 == 9 {
                s2.c.add(C::InjectedHookPanics, 1);
                panic!("soak: injected stop-hook panic");
            }
        })
        .spawn_hook(move || {
            let n = sp.c.0[C::SpawnHookCalls as usize].fetch_add(1, Relaxed);
            if n % 20 == 7 {
                sp.c.add(C::SpawnRefused, 1);
                return Err(std::io::Error::other("soak: injected thread refusal"));
            }
            Ok(())
        })
        .build()
        .expect("the soak's pool options are valid")
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns the time taken.
fn poll_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if cond() {
            return Some(t0.elapsed());
        }
        if t0.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct EpochPlan {
    index: u64,
    load_until: Instant,
    graceful: bool,
    baseline_threads: u64,
    seed: u64,
    submitters: usize,
}

fn run_epoch(
    plan: &EpochPlan,
    ctl: &Controller,
    tracker: &Arc<Tracker>,
    mon: &Arc<Monitor>,
) -> EpochResult {
    let ctx = Arc::new(Ctx {
        epoch: plan.index,
        tracker: Arc::clone(tracker),
        c: Counters::new(),
        failures: Arc::clone(&mon.failures),
        blockers: AtomicUsize::new(0),
        released: Mutex::new(false),
        release_cv: Condvar::new(),
    });
    let pool = build_pool(ctl, &ctx);
    let keys: Vec<Key> = (0..KEYS)
        .map(|i| pool.key(&format!("tenant-{i}")).expect("room for the keys"))
        .collect();
    {
        let mut c = mon.ceilings.lock().unwrap_or_else(|p| p.into_inner());
        c.clear();
        c.push_back((Instant::now(), HARD_MAX));
    }
    *mon.ctx.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&ctx));
    *mon.pool.lock().unwrap_or_else(|p| p.into_inner()) = Some(pool.clone());
    let main_beat = Arc::new(AtomicU64::new(u64::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    let mut beats = vec![Arc::clone(&main_beat)];
    let mut threads = Vec::new();
    for i in 0..plan.submitters {
        let beat = Arc::new(AtomicU64::new(u64::MAX));
        beats.push(Arc::clone(&beat));
        let s = Submitter {
            idx: i + 1,
            pool: pool.clone(),
            ctx: Arc::clone(&ctx),
            keys: keys.clone(),
            stop: Arc::clone(&stop),
            beat,
            mon: Arc::clone(mon),
            rng: Rng::new(plan.seed ^ (plan.index << 32) ^ (i as u64 + 1)),
        };
        let name = format!("soak-submitter-{}", s.idx);
        threads.push(
            std::thread::Builder::new()
                .name(name)
                .spawn(move || s.run())
                .expect("a submitter thread"),
        );
    }
    *mon.beats.lock().unwrap_or_else(|p| p.into_inner()) = beats;
    while Instant::now() < plan.load_until && !mon.done.load(Acquire) {
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut fallback_s = 0.0;
    let t_shutdown;
    let shutdown_ms;
    if plan.graceful {
        stop.store(true, Release);
        for t in threads {
            if t.join().is_err() {
                ctx.fail("a submitter thread panicked".into());
            }
        }
        // Idle spell: live workers and the process's threads must fall back.
        mon.log_ceiling(HARD_MAX);
        if let Err(e) = pool.set_policy(base_policy()) {
            ctx.fail(format!("the base policy was refused: {e}"));
        }
        let fell = poll_until(FALLBACK_LIMIT, || {
            let s = pool.stats();
            s.live <= 1
                && s.queued == 0
                && s.busy == 0
                && proc_threads() <= plan.baseline_threads + s.live as u64
        });
        match fell {
            Some(d) => fallback_s = d.as_secs_f64(),
            None => {
                fallback_s = FALLBACK_LIMIT.as_secs_f64();
                ctx.fail(format!(
                    "after the load stopped, live workers and threads did not fall back within \
                     {} s: stats {:?}, threads {} (baseline {})",
                    FALLBACK_LIMIT.as_secs(),
                    pool.stats(),
                    proc_threads(),
                    plan.baseline_threads
                ));
            }
        }
        let s = pool.stats();
        if s.queued == 0 && s.busy == 0 {
            if s.submitted != s.completed + s.returned {
                ctx.fail(format!(
                    "quiescent pool: submitted {} ≠ completed {} + returned {}",
                    s.submitted, s.completed, s.returned
                ));
            }
            if s.live as u64 != s.spawned - s.retired {
                ctx.fail(format!(
                    "quiescent pool: live {} ≠ spawned {} − retired {}",
                    s.live, s.spawned, s.retired
                ));
            }
        }
        t_shutdown = Instant::now();
        main_beat.store(mon.now_ms(), Release);
        if let Err(e) = pool.shutdown_timeout(SHUTDOWN_LIMIT) {
            ctx.fail(format!(
                "shutdown_timeout({} s) timed out: {e} ({} workers)",
                SHUTDOWN_LIMIT.as_secs(),
                e.workers
            ));
        }
        main_beat.store(u64::MAX, Release);
        shutdown_ms = t_shutdown.elapsed().as_secs_f64() * 1e3;
    } else {
        // Abrupt: shutdown_now races the submitters; blockers are let go first so that the
        // running tasks finish promptly.
        ctx.release_blockers();
        t_shutdown = Instant::now();
        main_beat.store(mon.now_ms(), Release);
        let returned = pool.shutdown_now();
        main_beat.store(u64::MAX, Release);
        shutdown_ms = t_shutdown.elapsed().as_secs_f64() * 1e3;
        ctx.c.add(C::Returned, returned.len() as u64);
        hand_back(|| returned.into_iter().for_each(|j| j.run()));
        stop.store(true, Release);
        for t in threads {
            if t.join().is_err() {
                ctx.fail("a submitter thread panicked".into());
            }
        }
        // A graceful shutdown after an abrupt one is a no-op that must return at once.
        if let Err(e) = pool.shutdown_timeout(Duration::from_secs(1)) {
            ctx.fail(format!("shutdown_timeout after shutdown_now: {e}"));
        }
    }
    mon.beats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .truncate(0);
    *mon.pool.lock().unwrap_or_else(|p| p.into_inner()) = None;
    ctx.release_blockers();

    verify(&pool, &ctx);

    // No worker thread outlives the pool.
    let settled = poll_until(Duration::from_secs(5), || {
        proc_threads() <= plan.baseline_threads
    });
    let leaked = if settled.is_some() {
        0
    } else {
        let n = proc_threads().saturating_sub(plan.baseline_threads);
        ctx.fail(format!(
            "{n} thread(s) outlived the pool ({} now, baseline {})",
            proc_threads(),
            plan.baseline_threads
        ));
        n
    };
    drop(keys);
    drop(pool);
    *mon.ctx.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let counts = ctx.c.snapshot();
    {
        let mut t = mon.totals.lock().unwrap_or_else(|p| p.into_inner());
        for (a, b) in t.iter_mut().zip(counts) {
            *a += b;
        }
    }
    EpochResult {
        leaked_threads: leaked,
        fallback_s,
        shutdown_ms,
    }
}

/// After shutdown: the soak's counts and the pool's must agree exactly.
fn verify(pool: &Pool, ctx: &Ctx) {
    let s = pool.stats();
    let g = |c| ctx.c.get(c);
    let check = |what: &str, pool_says: u64, soak_says: u64| {
        if pool_says != soak_says {
            ctx.fail(format!(
                "{what}: the pool says {pool_says}, the soak counted {soak_says}"
            ));
        }
    };
    check("accepted", s.submitted, g(C::Accepted));
    check("completed", s.completed, g(C::Ran));
    check("rejected", s.rejected, g(C::Rejected));
    check(
        "rejected (overloaded)",
        s.rejected_overloaded,
        g(C::RejectedOverloaded),
    );
    check(
        "rejected (shutdown)",
        s.rejected_shutdown,
        g(C::RejectedShutdown),
    );
    check("returned", s.returned, g(C::Returned));
    check("panicked", s.panicked, g(C::PanicsRan));
    check("hook panics", s.hook_panics, g(C::InjectedHookPanics));
    check("spawn failures", s.spawn_failures, g(C::SpawnRefused));
    check("thread starts", s.spawned, g(C::ThreadStarts));
    check("thread stops", s.spawned, g(C::ThreadStops));
    check(
        "panic handler calls",
        g(C::PanicsRan) - g(C::SpawnPanicsJoined).min(g(C::PanicsRan)),
        g(C::HandlerCalls),
    );
    let (mut ks, mut kr) = (0, 0);
    pool.for_each_key(|k, _| {
        ks += k.submitted;
        kr += k.rejected;
    });
    check("keyed accepted", ks, g(C::KeyedAccepted));
    check("keyed rejected", kr, g(C::KeyedRejected));
    // Every task is accounted for exactly once.
    let accepted = g(C::Accepted);
    let done = g(C::Ran) + g(C::Returned);
    if accepted != done {
        ctx.fail(format!(
            "accepted {accepted} ≠ completed {} + returned by shutdown_now {}",
            g(C::Ran),
            g(C::Returned)
        ));
    }
    check(
        "handed back (rejected + returned)",
        g(C::Rejected) + g(C::Returned),
        g(C::HandedBack),
    );
    if s.live != 0 || s.queued != 0 || s.busy != 0 {
        ctx.fail(format!("after shutdown: {s:?}"));
    }
}

// ----- the run -----------------------------------------------------------------------------

fn is_injected(p: &(dyn std::any::Any + Send)) -> bool {
    p.downcast_ref::<&str>()
        .is_some_and(|m| m.starts_with(INJECTED))
}

/// Runs the soak and reports what it found.
pub fn run(opts: SoakOptions) -> SoakReport {
    let start = Instant::now();
    let submitters = opts.submitters.max(1);
    // Injected panics are expected by the thousand: keep them off stderr, and let any other
    // panic through to the hook that was there. Installed once per process and left in place
    // (it only filters the soak's own payloads).
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_injected(info.payload()) {
                prev(info);
            }
        }));
    });

    let failures = Arc::new(Failures::default());
    let rss_start = rss_bytes();
    let threads_at_start = proc_threads();
    let tracker = Arc::new(Tracker::new());
    let mon = Arc::new(Monitor {
        start,
        failures: Arc::clone(&failures),
        done: AtomicBool::new(false),
        pool: Mutex::new(None),
        ctx: Mutex::new(None),
        beats: Mutex::new(Vec::new()),
        ceilings: Mutex::new(VecDeque::new()),
        totals: Mutex::new([0; NC]),
        stalls: AtomicU64::new(0),
        bound_violations: AtomicU64::new(0),
        max_live: AtomicUsize::new(0),
        max_threads: AtomicU64::new(0),
        max_rss: AtomicU64::new(rss_start),
        rss_samples: Mutex::new(Vec::new()),
        progress: opts.progress,
        abort_on_hang: opts.abort_on_hang,
        duration: opts.duration,
    });
    let monitor = {
        let m = Arc::clone(&mon);
        std::thread::Builder::new()
            .name("soak-monitor".into())
            .spawn(move || m.run())
            .expect("the monitor thread")
    };
    let ctl = Controller::new().expect("the control thread");
    let baseline_threads = proc_threads();
    mon.sample_rss();

    let secs = opts.duration.as_secs_f64();
    let mut epochs = (secs / EPOCH_TARGET.as_secs_f64()).round().max(1.0) as u64;
    if epochs == 1 && secs >= 6.0 {
        epochs = 2;
    }
    let mut leaked = 0;
    let mut fallback_max: f64 = 0.0;
    let mut shutdown_max: f64 = 0.0;
    let mut now_epochs = 0;
    for e in 0..epochs {
        let graceful = (epochs - 1 - e) % 2 == 0;
        let end = start + opts.duration.mul_f64((e + 1) as f64 / epochs as f64);
        // Graceful epochs keep a quarter (at most 4 s) for their idle spell.
        let len = opts.duration.div_f64(epochs as f64);
        let spell = if graceful {
            (len / 4).min(Duration::from_secs(4))
        } else {
            Duration::ZERO
        };
        let load_until = (end - spell).max(Instant::now() + Duration::from_millis(500));
        let r = run_epoch(
            &EpochPlan {
                index: e + 1,
                load_until,
                graceful,
                baseline_threads,
                seed: opts.seed,
                submitters,
            },
            &ctl,
            &tracker,
            &mon,
        );
        if !graceful {
            now_epochs += 1;
        }
        leaked += r.leaked_threads;
        fallback_max = fallback_max.max(r.fallback_s);
        shutdown_max = shutdown_max.max(r.shutdown_ms);
    }
    drop(ctl);
    // The shared control thread stops with its last handle: back to the threads at start
    // (plus the monitor).
    if poll_until(Duration::from_secs(5), || {
        proc_threads() < threads_at_start + 2
    })
    .is_none()
    {
        let n = proc_threads().saturating_sub(threads_at_start + 1);
        failures.push(format!(
            "{n} thread(s) left after the controller was dropped ({} now, {} at start + the \
             monitor)",
            proc_threads(),
            threads_at_start
        ));
        leaked += n;
    }
    mon.sample_rss();
    mon.done.store(true, Release);
    let _ = monitor.join();

    let t = *mon.totals.lock().unwrap_or_else(|p| p.into_inner());
    let g = |c: C| t[c as usize];
    let elapsed = start.elapsed().as_secs_f64();

    // Memory: the highest RSS over the warmed-up start against the end of the run.
    let samples = mon
        .rss_samples
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let warm_end = (elapsed * 0.2).clamp(3.0, 120.0);
    let warm = samples
        .iter()
        .filter(|(t, _)| *t <= warm_end)
        .map(|&(_, r)| r)
        .max()
        .unwrap_or(rss_start);
    let end = samples
        .iter()
        .filter(|(t, _)| *t >= elapsed * 0.8)
        .map(|&(_, r)| r)
        .max()
        .unwrap_or(warm);
    let growth = mb(end) - mb(warm);
    let allowed_growth = (mb(warm) * 0.5).max(32.0);
    if growth > allowed_growth {
        failures.push(format!(
            "memory grew by {growth:.1} MiB (from {:.1} MiB warmed up to {:.1} MiB at the end; \
             {allowed_growth:.0} MiB allowed)",
            mb(warm),
            mb(end)
        ));
    }
    let lost = g(C::Accepted).saturating_sub(g(C::Ran) + g(C::Returned));
    let failure_count = failures.count.load(SeqCst);
    let failure_list = failures
        .list
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    SoakReport {
        ok: failure_count == 0 && lost == 0 && g(C::Duplicated) == 0 && leaked == 0,
        failures: failure_list,
        failure_count,
        duration_s: elapsed,
        requested_s: secs,
        seed: opts.seed,
        submitters,
        epochs,
        shutdown_now_epochs: now_epochs,
        operations: g(C::Operations),
        accepted: g(C::Accepted),
        completed: g(C::Ran),
        rejected: g(C::Rejected),
        rejected_overloaded: g(C::RejectedOverloaded),
        rejected_shutdown: g(C::RejectedShutdown),
        returned: g(C::Returned),
        handed_back: g(C::HandedBack),
        lost,
        duplicated: g(C::Duplicated),
        dropped_unrun: g(C::DroppedUnrun),
        unverified: g(C::Unverified),
        panics: g(C::PanicsRan),
        hook_panics: g(C::InjectedHookPanics),
        spawn_refusals: g(C::SpawnRefused),
        spawn_joins: g(C::SpawnJoins),
        spawn_awaits: g(C::SpawnAwaits),
        batches: g(C::Batches),
        keyed: g(C::Keyed),
        nested: g(C::Nested),
        floods: g(C::Floods),
        blockers: g(C::Blockers),
        resizes: g(C::Resizes),
        bound_errors: g(C::BoundErrors),
        policy_swaps: g(C::PolicySwaps),
        policy_rejected: g(C::PolicyRejected),
        keys_full: g(C::KeysFull),
        max_live: mon.max_live.load(SeqCst),
        bound_violations: mon.bound_violations.load(SeqCst),
        rss_start_mb: mb(rss_start),
        rss_warm_mb: mb(warm),
        rss_end_mb: mb(end),
        rss_growth_mb: growth,
        max_rss_mb: mb(mon.max_rss.load(SeqCst)),
        baseline_threads,
        max_threads: mon.max_threads.load(SeqCst),
        leaked_threads: leaked,
        thread_fallback_max_s: fallback_max,
        shutdown_max_ms: shutdown_max,
        stalls: mon.stalls.load(SeqCst),
    }
}

/// Prints a report for people: the counts, the resources, and every failure.
pub fn print_human(r: &SoakReport) {
    println!(
        "elastic-pool soak: {:.0} s (asked {:.0} s), seed {}, {} submitters, {} pools ({} ended \
         by shutdown_now)",
        r.duration_s, r.requested_s, r.seed, r.submitters, r.epochs, r.shutdown_now_epochs
    );
    println!();
    println!("  operations        {:>12}", r.operations);
    println!("  accepted          {:>12}", r.accepted);
    println!("  completed         {:>12}", r.completed);
    println!(
        "  rejected          {:>12}   ({} overloaded, {} shutting down; every job handed back)",
        r.rejected, r.rejected_overloaded, r.rejected_shutdown
    );
    println!("  returned          {:>12}   (by shutdown_now)", r.returned);
    println!("  lost              {:>12}", r.lost);
    println!("  duplicated        {:>12}", r.duplicated);
    println!("  dropped unrun     {:>12}", r.dropped_unrun);
    println!(
        "  faults            {} task panics, {} hook panics, {} refused threads, {} blockers",
        r.panics, r.hook_panics, r.spawn_refusals, r.blockers
    );
    println!(
        "  mix               {} joins, {} awaits, {} batches, {} keyed, {} nested, {} floods, \
         {} resizes ({} invalid), {} policy swaps ({} invalid refused), {} KeysFull",
        r.spawn_joins,
        r.spawn_awaits,
        r.batches,
        r.keyed,
        r.nested,
        r.floods,
        r.resizes,
        r.bound_errors,
        r.policy_swaps,
        r.policy_rejected,
        r.keys_full
    );
    println!(
        "  workers           max live {} (bound violations {})",
        r.max_live, r.bound_violations
    );
    println!(
        "  memory            RSS {:.1} MiB at start, {:.1} warmed up, {:.1} at the end \
         ({:+.1}), max {:.1}",
        r.rss_start_mb, r.rss_warm_mb, r.rss_end_mb, r.rss_growth_mb, r.max_rss_mb
    );
    println!(
        "  threads           baseline {}, max {}, leaked {}; fell back within {:.2} s",
        r.baseline_threads, r.max_threads, r.leaked_threads, r.thread_fallback_max_s
    );
    println!(
        "  shutdown          longest {:.0} ms; stalls {}",
        r.shutdown_max_ms, r.stalls
    );
    println!();
    if r.ok {
        println!("  PASS: every invariant held");
    } else {
        println!("  FAIL: {} invariant failure(s)", r.failure_count);
        for f in &r.failures {
            println!("    - {f}");
        }
    }
}
