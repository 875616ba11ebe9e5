//! Erlang-B / Erlang-C queueing formulas for M/M/c sizing.
//!
//! The autoscaler's default strategy and the simulator's oracle both size a pool from the
//! arrival rate `λ` and the mean service time `S`: the offered load is `a = λ·S` (Erlang), and
//! with `c` servers the probability that an arriving task has to wait is Erlang-C `C(c, a)`.
//! In an M/M/c queue the waiting time beyond zero is exponential, so
//!
//! ```text
//! P(Wq > t) = C(c, a) · exp(−(c − a)·t / S)
//! ```
//!
//! Erlang-C is computed through the numerically stable Erlang-B recursion
//! `B₀ = 1, B_k = a·B_{k−1} / (k + a·B_{k−1})` and `C = c·B_c / (c − a·(1 − B_c))`,
//! which never forms a factorial and stays exact for thousands of servers.

/// Erlang-B blocking probability `B(c, a)` for `c` servers and offered load `a` (Erlang).
///
/// Returns 1.0 for `c = 0`. `a` must be finite and non-negative; a non-finite or negative
/// `a` yields 1.0 (every arrival blocked), which is the conservative answer for sizing.
pub fn erlang_b(c: usize, a: f64) -> f64 {
    if !(a.is_finite() && a >= 0.0) {
        return 1.0;
    }
    let mut b = 1.0_f64;
    for k in 1..=c {
        b = a * b / (k as f64 + a * b);
    }
    b
}

/// Erlang-C probability that an arrival waits, `C(c, a)`, for `c` servers and load `a`.
///
/// Returns 1.0 when the system is unstable (`c <= a`), since then every arrival waits.
pub fn erlang_c(c: usize, a: f64) -> f64 {
    if !(a.is_finite() && a >= 0.0) || (c as f64) <= a {
        return 1.0;
    }
    if a == 0.0 {
        return 0.0;
    }
    let b = erlang_b(c, a);
    let c_f = c as f64;
    (c_f * b / (c_f - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// `P(Wq > t)` in an M/M/c queue: the probability that a task waits longer than `t_s` seconds
/// with `c` servers, arrival rate `lambda` (per second) and mean service time `service_s`.
pub fn wait_exceed_probability(c: usize, lambda: f64, service_s: f64, t_s: f64) -> f64 {
    let a = lambda * service_s;
    let pc = erlang_c(c, a);
    if pc >= 1.0 && (c as f64) <= a {
        return 1.0;
    }
    if service_s <= 0.0 {
        return 0.0;
    }
    (pc * (-(c as f64 - a) * t_s / service_s).exp()).clamp(0.0, 1.0)
}

/// The fewest servers `c` for which `P(Wq > wait_target_s) <= tail` in an M/M/c queue.
///
/// `tail` is the allowed tail mass: 0.01 for a p99 target. Returns 0 when there is no load
/// (`lambda == 0` or `service_s == 0`), and at most `cap` (a search bound; the pool's max).
///
/// ```
/// use elastic_pool::erlang::workers_for_wait;
/// // λ = 200/s, S = 50 ms, p99 wait ≤ 20 ms needs 16 workers; λ = 20/s needs 4.
/// assert_eq!(workers_for_wait(200.0, 0.050, 0.020, 0.01, 10_000), 16);
/// assert_eq!(workers_for_wait(20.0, 0.050, 0.020, 0.01, 10_000), 4);
/// ```
pub fn workers_for_wait(
    lambda: f64,
    service_s: f64,
    wait_target_s: f64,
    tail: f64,
    cap: usize,
) -> usize {
    if !(lambda.is_finite() && service_s.is_finite()) || lambda <= 0.0 || service_s <= 0.0 {
        return 0;
    }
    let a = lambda * service_s;
    // Smallest c strictly above the load, then walk up. The walk is short: square-root
    // staffing puts the answer near a + β·√a with β of a few units.
    let mut c = (a.floor() as usize).saturating_add(1).max(1);
    while c < cap {
        if wait_exceed_probability(c, lambda, service_s, wait_target_s.max(0.0)) <= tail {
            return c;
        }
        c += 1;
    }
    cap
}

/// The shortest queue that an M/M/c queue in steady state reaches with probability at most
/// `tail`: the smallest `k ≥ 1` with `P(Nq ≥ k) = C(c, a)·ρ^k ≤ tail` (`ρ = a/c`; given that
/// all servers are busy, the number waiting is geometric with ratio `ρ`).
///
/// The pool uses it to tell a burst from Poisson noise: a queue this long is one the current
/// size makes rare, so growing at once is worth it. Returns 1 when the system is unstable
/// (`c <= a`: every queue grows), and at most `cap`.
///
/// ```
/// use elastic_pool::erlang::queue_for_tail;
/// // 16 workers at λ = 200/s, S = 50 ms (a = 10): a queue of 9 happens once in ~1000 arrivals.
/// assert_eq!(queue_for_tail(16, 10.0, 1e-3, 1_000), 9);
/// assert_eq!(queue_for_tail(4, 5.0, 1e-3, 1_000), 1);
/// ```
pub fn queue_for_tail(c: usize, a: f64, tail: f64, cap: usize) -> usize {
    let cap = cap.max(1);
    if !(a.is_finite() && a >= 0.0) || (c as f64) <= a || tail.is_nan() || tail <= 0.0 {
        return 1;
    }
    let pc = erlang_c(c, a);
    if pc <= tail || a == 0.0 {
        return 1;
    }
    let rho = a / c as f64;
    // C·ρ^k ≤ tail  ⇔  k ≥ ln(tail / C) / ln ρ (both logarithms negative).
    let k = ((tail / pc).ln() / rho.ln()).ceil();
    if k.is_finite() && k >= 1.0 {
        (k as usize).min(cap)
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_b_known_values() {
        // Classic table value: B(10, 5) ≈ 0.01838.
        assert!((erlang_b(10, 5.0) - 0.018_384).abs() < 1e-5);
        assert_eq!(erlang_b(0, 3.0), 1.0);
    }

    #[test]
    fn erlang_c_known_values() {
        // C(2, 1) = 1/3 for M/M/2 at utilisation 0.5.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        // Unstable systems always wait.
        assert_eq!(erlang_c(3, 3.0), 1.0);
        assert_eq!(erlang_c(3, 0.0), 0.0);
    }

    #[test]
    fn oracle_figures_from_the_research_notes() {
        // S = 50 ms, T = 20 ms, p99: λ 20 → 4, 100 → 10, 200 → 16, 400 → 27, 800 → 48.
        for (lambda, want) in [
            (20.0, 4),
            (100.0, 10),
            (200.0, 16),
            (400.0, 27),
            (800.0, 48),
        ] {
            assert_eq!(
                workers_for_wait(lambda, 0.05, 0.02, 0.01, 10_000),
                want,
                "λ={lambda}"
            );
        }
        assert_eq!(workers_for_wait(0.0, 0.05, 0.02, 0.01, 10_000), 0);
        assert_eq!(workers_for_wait(1e9, 0.05, 0.02, 0.01, 64), 64);
    }

    #[test]
    fn queue_tail_matches_the_geometric_formula() {
        for &(c, a) in &[(4usize, 1.0f64), (16, 10.0), (27, 20.0), (48, 40.0)] {
            let k = queue_for_tail(c, a, 1e-3, 10_000);
            let p = |k: usize| erlang_c(c, a) * (a / c as f64).powi(k as i32);
            assert!(p(k) <= 1e-3, "c={c} a={a} k={k}");
            if k > 1 {
                assert!(p(k - 1) > 1e-3, "c={c} a={a}: {k} is not the smallest");
            }
        }
        // Unstable or degenerate: grow at the first queued task.
        assert_eq!(queue_for_tail(4, 4.0, 1e-3, 100), 1);
        assert_eq!(queue_for_tail(4, f64::NAN, 1e-3, 100), 1);
        assert_eq!(queue_for_tail(8, 0.0, 1e-3, 100), 1);
        // Capped.
        assert_eq!(queue_for_tail(100, 99.0, 1e-9, 50), 50);
    }
}
