//! Time and machine facts read once: a monotonic nanosecond clock and the CPU count.

use std::sync::OnceLock;
use std::time::Instant;

/// Nanoseconds since a fixed origin, as a `u64` that fits in an atomic.
///
/// Timestamps stored in tasks and atomics are `u64` nanoseconds since the pool's clock
/// origin rather than `Instant`s. Zero is reserved for "not stamped".
///
/// The clock is read on every sampled task three times (the submit stamp, the run's start and
/// end) and at each busy period's ends, so its cost is most of what wait tracking costs. It
/// reads the CPU's time-stamp counter through `quanta` (12–14 ns a read on a 2-vCPU KVM guest,
/// against 32–36 ns for `Instant::now`, whose vDSO path reads the same counter and then
/// converts it under a sequence lock), scaled to nanoseconds by quanta's one-time calibration
/// against the monotonic clock (~2 ms, once per process). Where the counter is not invariant
/// across cores, or on other architectures, quanta reads the OS monotonic clock instead.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
    origin_raw: u64,
}

/// The process's quanta clock (its calibration is computed once).
fn source() -> &'static quanta::Clock {
    static SOURCE: OnceLock<quanta::Clock> = OnceLock::new();
    SOURCE.get_or_init(quanta::Clock::new)
}

impl Clock {
    /// A clock whose origin is now (minus one nanosecond, so that `now_ns` is never 0).
    pub fn new() -> Self {
        let q = source();
        Clock {
            origin: Instant::now(),
            origin_raw: q.raw(),
        }
    }

    /// Nanoseconds since the origin; always ≥ 1.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        let q = source();
        q.delta_as_nanos(self.origin_raw, q.raw()).saturating_add(1)
    }

    /// The `Instant` that `ns` stands for.
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.origin + std::time::Duration::from_nanos(ns.saturating_sub(1))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A CPU-time clock (`CLOCK_PROCESS_CPUTIME_ID`, `CLOCK_THREAD_CPUTIME_ID`) in nanoseconds:
/// one `clock_gettime` system call (the vDSO serves neither). `None` if the kernel refuses.
#[cfg(unix)]
pub(crate) fn cpu_clock_ns(id: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` that outlives the call; an id the kernel
    // does not know is refused with an error code, which we return as `None`.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The number of CPUs this process may use, read once.
///
/// `std::thread::available_parallelism` honours cgroup quotas and affinity masks, and reads
/// files under /sys and /proc on every call; the pool and the autoscaler consult the CPU
/// count on hot and periodic paths, so it is read once per process and cached. Falls back
/// to 1 if the platform cannot tell.
pub fn cpu_count() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}
