//! A tokio service offloading blocking work to an autoscaled pool with backpressure.
//!
//! Each "request" hands a blocking job (a file-system-like 2 ms sleep plus some hashing) to
//! the pool through [`AsyncPool::spawn`], which waits for room in the bounded queue without
//! blocking a runtime thread, then awaits the job's `TaskHandle` for the result. A heartbeat
//! task measures how late the runtime wakes it: blocking calls made directly on the runtime
//! would show up there as stalls.
//!
//! ```text
//! cargo run -p elastic-pool --example tokio_offload --release
//! ```

use elastic_pool::async_submit::AsyncPool;
use elastic_pool::policy::Policy;
use elastic_pool::Pool;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The blocking part of a request: a slow call, then some CPU.
fn blocking_work(id: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(2));
    (0..10_000u64).fold(id, |h, x| h.rotate_left(5) ^ x.wrapping_mul(0x9E37_79B9))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const REQUESTS: u64 = 2_000;
    let pool = Pool::builder()
        .queue_capacity(64) // the backpressure bound
        .autoscale(Policy {
            min_workers: 1,
            max_workers: 32,
            tick_ms: 100.0,
            ..Policy::default()
        })
        .build()?;
    let offload = AsyncPool::new(pool.clone())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;

    let worst_lag_us = Arc::new(AtomicU64::new(0));
    let most_waiting = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let checksum = runtime.block_on(async {
        // Heartbeat: how late is a 1 ms timer?
        let lag = Arc::clone(&worst_lag_us);
        let (waiting, room) = (Arc::clone(&most_waiting), offload.clone());
        let heartbeat = tokio::spawn(async move {
            loop {
                waiting.fetch_max(room.waiting() as u64, Relaxed);
                let t = Instant::now();
                tokio::time::sleep(Duration::from_millis(1)).await;
                let late = t.elapsed().saturating_sub(Duration::from_millis(1));
                lag.fetch_max(late.as_micros() as u64, Relaxed);
            }
        });
        let requests: Vec<_> = (0..REQUESTS)
            .map(|id| {
                let offload = offload.clone();
                tokio::spawn(async move {
                    // Waits for room (backpressure), then for the result; neither blocks.
                    // (`JoinError` holds a panic payload, which is not `Sync`: report it as
                    // text.)
                    let handle = offload
                        .spawn(move || blocking_work(id))
                        .await
                        .map_err(|e| e.to_string())?;
                    handle.await.map_err(|e| e.to_string())
                })
            })
            .collect();
        let mut sum = 0u64;
        for r in requests {
            sum = sum.wrapping_add(r.await.expect("request task")?);
        }
        heartbeat.abort();
        Ok::<u64, String>(sum)
    })?;
    let elapsed = started.elapsed();
    let s = pool.stats();
    println!(
        "{REQUESTS} requests in {:.2} s ({:.0}/s), checksum {checksum:#x}",
        elapsed.as_secs_f64(),
        REQUESTS as f64 / elapsed.as_secs_f64()
    );
    println!(
        "pool: {} workers started; up to {} submits waited for room at once (queue bound 64); \
         p99 queue wait in the last window {:?}",
        s.spawned,
        most_waiting.load(Relaxed),
        pool.metrics().window.wait.p99
    );
    println!(
        "worst heartbeat lag on the runtime: {} µs",
        worst_lag_us.load(Relaxed)
    );
    pool.shutdown();
    Ok(())
}
