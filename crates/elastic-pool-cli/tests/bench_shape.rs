//! `elastic-pool bench --json`: the output's shape only (scenario objects, pool names,
//! finite figures with min ≤ median ≤ max), never its timings.

use assert_cmd::Command;
use serde_json::Value;

const POOLS: &[&str] = &[
    "elastic-pool",
    "elastic-pool-typed",
    "elastic-pool-batch",
    "rusty_pool",
    "threadpool",
    "rayon",
    "tokio-blocking",
    "channel-floor",
];

fn bench_json(scenario: &str) -> Vec<Value> {
    let out = Command::cargo_bin("elastic-pool")
        .expect("the binary is built")
        .args(["bench", "--quick", "--json", "--scenario", scenario])
        .output()
        .expect("runs");
    assert!(out.status.success(), "exit {:?}", out.status);
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    v.as_array().expect("a JSON array").clone()
}

fn check_shape(entries: &[Value]) {
    assert!(!entries.is_empty());
    for e in entries {
        assert!(e["scenario"].is_string(), "{e}");
        assert!(e["unit"].is_string(), "{e}");
        assert!(e["higher_is_better"].is_boolean(), "{e}");
        let results = e["results"].as_array().expect("results array");
        assert!(!results.is_empty());
        for r in results {
            let pool = r["pool"].as_str().expect("pool name");
            // `burst` and `grow` add the autoscaled variant of this pool.
            assert!(
                POOLS.contains(&pool) || pool == "elastic-pool-autoscaled",
                "unknown pool name {pool}"
            );
            let (med, min, max) = (
                r["median"].as_f64().expect("median"),
                r["min"].as_f64().expect("min"),
                r["max"].as_f64().expect("max"),
            );
            assert!(min <= med && med <= max, "{r}");
        }
    }
}

#[test]
fn reject_json_has_the_documented_shape() {
    let entries = bench_json("reject");
    check_shape(&entries);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["scenario"], "reject");
    assert_eq!(entries[0]["higher_is_better"], false);
}

#[test]
fn empty_1p_json_names_every_pool() {
    let entries = bench_json("empty-1p");
    check_shape(&entries);
    assert_eq!(entries[0]["scenario"], "empty-1p");
    let names: Vec<&str> = entries[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pool"].as_str().unwrap())
        .collect();
    assert_eq!(names, POOLS);
}

#[test]
fn one_entry_of_a_scenario_can_be_asked_for() {
    let entries = bench_json("memory-metrics-fixed");
    check_shape(&entries);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["scenario"], "memory-metrics-fixed");
}

#[test]
fn an_unknown_scenario_is_bad_input() {
    Command::cargo_bin("elastic-pool")
        .expect("the binary is built")
        .args(["bench", "--scenario", "nope"])
        .assert()
        .code(2);
}
