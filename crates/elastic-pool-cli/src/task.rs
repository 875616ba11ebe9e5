//! Task kinds as they run on a worker: sleep, and spin calibrated against the thread CPU clock.
//!
//! A spin task burns exactly its CPU time, read from `CLOCK_THREAD_CPUTIME_ID`, so a spin task
//! preempted by the OS keeps spinning until it has had its share of a core: under CPU
//! contention its wall-clock service time grows, as real CPU-bound work does.

use std::sync::OnceLock;
use std::time::Duration;

/// What one task does on a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Sleep this many nanoseconds.
    Sleep(u64),
    /// Spin until this thread has used this many nanoseconds of CPU.
    Spin(u64),
}

impl Work {
    /// The nominal service time, nanoseconds (CPU time for spin).
    pub fn ns(&self) -> u64 {
        match *self {
            Work::Sleep(n) | Work::Spin(n) => n,
        }
    }

    /// Whether the task spins on a core.
    pub fn is_spin(&self) -> bool {
        matches!(self, Work::Spin(_))
    }

    /// Runs the task on the calling thread; returns the CPU time it spun (0 for sleep).
    pub fn run(&self) -> u64 {
        match *self {
            Work::Sleep(n) => {
                std::thread::sleep(Duration::from_nanos(n));
                0
            }
            Work::Spin(n) => spin_for(n),
        }
    }
}

/// CPU time used by the calling thread, nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the platform
    // defines; clock_gettime writes only into `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// CPU time aimed at between two reads of the thread CPU clock while spinning.
const CHUNK_NS: u64 = 5_000;

/// Iterations of [`burn`] that take about [`CHUNK_NS`] of CPU, measured once on the thread CPU
/// clock.
fn chunk_iters() -> u64 {
    static ITERS: OnceLock<u64> = OnceLock::new();
    *ITERS.get_or_init(|| {
        let n = 1 << 16;
        let mut best = u64::MAX;
        for _ in 0..3 {
            let t0 = thread_cpu_ns();
            std::hint::black_box(burn(n, 1));
            best = best.min(thread_cpu_ns().saturating_sub(t0).max(1));
        }
        (n * CHUNK_NS / best).clamp(64, 1 << 22)
    })
}

#[inline(never)]
fn burn(iters: u64, seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..iters {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x = std::hint::black_box(x);
    }
    x
}

/// Spins until the calling thread has used `cpu_ns` nanoseconds of CPU; returns the CPU time
/// actually used (at least `cpu_ns`, over by at most about one 5 µs chunk).
pub fn spin_for(cpu_ns: u64) -> u64 {
    let iters = chunk_iters();
    let start = thread_cpu_ns();
    let mut x = start;
    loop {
        let used = thread_cpu_ns().saturating_sub(start);
        if used >= cpu_ns {
            std::hint::black_box(x);
            return used;
        }
        // Close to the end, spin in smaller chunks so the overshoot stays small.
        let left = cpu_ns - used;
        let n = if left < CHUNK_NS {
            (iters * left / CHUNK_NS).max(16)
        } else {
            iters
        };
        x = burn(n, x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_uses_its_cpu_time_on_the_thread_clock() {
        for ms in [1u64, 3] {
            let want = ms * 1_000_000;
            let t0 = thread_cpu_ns();
            let used = Work::Spin(want).run();
            let measured = thread_cpu_ns() - t0;
            assert!(used >= want, "{used} < {want}");
            assert!(measured >= want);
            // Overshoot: a chunk plus two clock reads; generous for a noisy VM.
            assert!(used < want + 500_000, "{used} for {want}");
        }
    }

    #[test]
    fn sleep_uses_no_cpu_to_speak_of() {
        let t0 = thread_cpu_ns();
        assert_eq!(Work::Sleep(2_000_000).run(), 0);
        assert!(thread_cpu_ns() - t0 < 1_000_000);
    }
}
