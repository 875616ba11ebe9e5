//! A short `elastic-pool soak` (6 s: two pools, one ended by `shutdown_now` and one by
//! `shutdown_timeout`): every invariant holds and the JSON report has its documented fields.
//! CI runs the 60 s soak separately; docs/RELIABILITY.md records a 30-minute run.

use assert_cmd::Command;
use serde_json::Value;

#[test]
fn a_short_soak_keeps_every_invariant() {
    let assert = Command::cargo_bin("elastic-pool")
        .expect("the binary is built")
        .args(["soak", "--duration", "6s", "--json"])
        .timeout(std::time::Duration::from_secs(180))
        .assert();
    let out = assert.get_output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\nstderr:\n{stderr}"));
    assert_eq!(out.status.code(), Some(0), "{v:#}\nstderr:\n{stderr}");
    let n = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("`{k}` missing or not a count in {v:#}"))
    };
    for k in [
        "lost",
        "duplicated",
        "leaked_threads",
        "stalls",
        "dropped_unrun",
    ] {
        assert_eq!(n(k), 0, "{k} in {v:#}");
    }
    assert!(v["max_rss_mb"].as_f64().is_some_and(|m| m > 0.0), "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(0), "{v:#}");
    // The soak's own books balance, and it exercised what it claims to.
    assert_eq!(n("accepted"), n("completed") + n("returned"), "{v:#}");
    assert_eq!(n("handed_back"), n("rejected") + n("returned"), "{v:#}");
    assert_eq!(n("epochs"), 2);
    assert_eq!(n("shutdown_now_epochs"), 1);
    for k in [
        "operations",
        "accepted",
        "rejected",
        "panics",
        "hook_panics",
        "spawn_joins",
        "spawn_awaits",
        "batches",
        "keyed",
        "resizes",
        "policy_swaps",
        "policy_rejected",
    ] {
        assert!(n(k) > 0, "no {k} in {v:#}");
    }
}
