//! End-to-end tests of the `elastic-pool` command: virtual and short real-thread runs, the JSON
//! schema, the output files, and bad input.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn cmd() -> Command {
    Command::cargo_bin("elastic-pool").expect("the binary is built")
}

/// A 6 s trace with a step, played at ×2: 3 s of real time.
const SHORT: &str = r#"
name = "short"
slo_p99_wait_ms = 20.0
warmup_s = 1
[task]
kind = "sleep"
mean_ms = 20.0
dist = "exponential"
[[phase]]
duration_s = 2
rate = 20
[[phase]]
duration_s = 2
rate = 150
[[phase]]
duration_s = 2
rate = 20
"#;

fn write_trace(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Num,
    NumOrNull,
}

const SCHEMA: &[(&str, Kind)] = &[
    ("trace", Kind::Str),
    ("contender", Kind::Str),
    ("seed", Kind::Int),
    ("mode", Kind::Str),
    ("note", Kind::Str),
    ("speed", Kind::Num),
    ("duration_s", Kind::Num),
    ("slo_ms", Kind::Num),
    ("ncpu", Kind::Int),
    ("submitted", Kind::Int),
    ("completed", Kind::Int),
    ("rejected", Kind::Int),
    ("lost", Kind::Int),
    ("scored_tasks", Kind::Int),
    ("wait_p50_ms", Kind::Num),
    ("wait_p99_ms", Kind::Num),
    ("wait_max_ms", Kind::Num),
    ("budget_burn", Kind::Num),
    ("windows_over_slo_fraction", Kind::Num),
    ("worker_seconds", Kind::Num),
    ("oracle_worker_seconds", Kind::Num),
    ("worker_seconds_ratio", Kind::Num),
    ("idle_worker_seconds", Kind::Num),
    ("reversals_per_min", Kind::Num),
    ("recovery_s", Kind::NumOrNull),
    ("max_workers", Kind::Int),
    ("oracle_max_workers", Kind::Int),
    ("threads_spawned", Kind::Int),
    ("controller_cpu_ms", Kind::Num),
    ("throughput_ratio", Kind::NumOrNull),
    ("sojourn_p50_ms", Kind::NumOrNull),
    ("sojourn_p99_ms", Kind::NumOrNull),
    ("sojourn_max_ms", Kind::NumOrNull),
];

/// Every documented field is present with the right type, and nothing else is.
fn check_schema(v: &Value) {
    let obj = v.as_object().expect("a score is a JSON object");
    for (field, kind) in SCHEMA {
        let x = obj
            .get(*field)
            .unwrap_or_else(|| panic!("field `{field}` missing in {v}"));
        let ok = match kind {
            Kind::Str => x.is_string(),
            Kind::Int => x.is_u64(),
            Kind::Num => x.is_number(),
            Kind::NumOrNull => x.is_number() || x.is_null(),
        };
        assert!(ok, "field `{field}` has the wrong type: {x}");
    }
    assert_eq!(obj.len(), SCHEMA.len(), "unexpected fields in {v}");
    let mode = obj["mode"].as_str().unwrap();
    assert!(mode == "real" || mode == "virtual");
    assert_eq!(obj["lost"], 0);
    let submitted = obj["submitted"].as_u64().unwrap();
    let completed = obj["completed"].as_u64().unwrap();
    let rejected = obj["rejected"].as_u64().unwrap();
    assert_eq!(submitted, completed + rejected);
    assert!(submitted > 0);
}

fn json_out(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(out)
        )
    })
}

#[test]
fn traces_lists_every_built_in() {
    let out = cmd()
        .arg("traces")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for name in [
        "step",
        "spike",
        "ramp",
        "diurnal",
        "onoff",
        "cpu-overload",
        "mixed",
        "heavy-tail",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    cmd()
        .args(["traces", "--show", "step"])
        .assert()
        .success()
        .stdout(predicate::str::contains("[[phase]]"));
    cmd()
        .args(["traces", "--show", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown trace `nope`"));
}

#[test]
fn simulate_virtual_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let assert = cmd()
        .args([
            "simulate",
            "--virtual",
            "--trace",
            "step",
            "--json",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let v = json_out(&assert.get_output().stdout);
    check_schema(&v);
    assert_eq!(v["mode"], "virtual");
    assert_eq!(v["trace"], "step");
    assert_eq!(v["contender"], "erlang");
    assert_eq!(v["duration_s"], 150.0);
    assert!(v["note"].as_str().unwrap().contains("not a measurement"));
    // The step trace has a step: recovery is a number; sleep tasks: no throughput ratio.
    assert!(v["recovery_s"].is_number());
    assert!(v["throughput_ratio"].is_null());
    assert!(v["oracle_worker_seconds"].as_f64().unwrap() > 1000.0);
    let csv = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    assert_eq!(csv.lines().count(), 151);
    assert!(csv.lines().nth(1).unwrap().ends_with(",virtual"));
    let svg = std::fs::read_to_string(out.join("timeline.svg")).unwrap();
    assert!(svg.contains("MODEL") && svg.contains("oracle c*"));

    // The human form: a summary table labelled as a model.
    cmd()
        .args([
            "simulate",
            "--virtual",
            "--trace",
            "spike",
            "--strategy",
            "oracle",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("not a measurement")
                .and(predicate::str::contains("budget burn"))
                .and(predicate::str::contains("worker-seconds")),
        );
}

#[test]
fn compare_virtual_gives_one_row_per_contender() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let contenders = "erlang,queue-wait,hill-climb,oracle,static:12,static-peak,on-demand,tpe,\
                      tokio-blocking,rusty-pool";
    let assert = cmd()
        .args(["compare", "--virtual", "--trace", "cpu-overload", "--json"])
        .args(["--contenders", contenders, "--out"])
        .arg(&out)
        .assert()
        .success();
    let v = json_out(&assert.get_output().stdout);
    let runs = v.as_array().expect("compare --json prints an array");
    assert_eq!(runs.len(), 10);
    for (r, name) in runs.iter().zip(contenders.split(',')) {
        check_schema(r);
        assert_eq!(r["contender"], name);
        // Spin tasks: throughput and sojourn scores are present.
        assert!(r["throughput_ratio"].is_number(), "{r}");
        assert!(r["sojourn_p99_ms"].is_number());
    }
    // Every contender saw the same schedule.
    let n = runs[0]["submitted"].as_u64().unwrap();
    assert!(runs.iter().all(|r| r["submitted"] == n));
    assert!(out.join("compare.svg").exists() && out.join("compare.csv").exists());
    let table = cmd()
        .args([
            "compare",
            "--virtual",
            "--trace",
            "step",
            "--contenders",
            "oracle,on-demand",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("oracle") && table.contains("on-demand") && table.contains("burn"));
}

#[test]
fn short_real_thread_runs() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(dir.path(), "short.toml", SHORT);
    let out = dir.path().join("real");
    // The README's command, on a small trace: the default strategy on real threads.
    let assert = cmd()
        .args([
            "simulate", "--trace", &trace, "--speed", "2", "--json", "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let v = json_out(&assert.get_output().stdout);
    check_schema(&v);
    assert_eq!(v["mode"], "real");
    assert_eq!(v["contender"], "erlang");
    assert_eq!(v["speed"], 2.0);
    assert_eq!(v["duration_s"], 3.0);
    assert!(v["threads_spawned"].as_u64().unwrap() >= 1);
    assert!(v["worker_seconds"].as_f64().unwrap() > 0.0);
    assert!(out.join("timeline.csv").exists() && out.join("timeline.svg").exists());

    // The peers and two baselines, measured the same way.
    let assert = cmd()
        .args(["compare", "--trace", &trace, "--speed", "2", "--json"])
        .args([
            "--contenders",
            "oracle,tpe,tokio-blocking,rusty-pool",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let v = json_out(&assert.get_output().stdout);
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for r in runs {
        check_schema(r);
        assert_eq!(r["mode"], "real");
        assert!(r["max_workers"].as_u64().unwrap() >= 1, "{r}");
    }
    // The on-demand peers spawn threads as they go.
    assert!(runs[2]["threads_spawned"].as_u64().unwrap() >= 1);
    assert!(runs[3]["threads_spawned"].as_u64().unwrap() >= 1);
}

/// Runs `args` and asserts a clean failure: exit code 2, `needles` in stderr, nothing on
/// stdout, and no file in the output folder.
fn rejects(args: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let assert = cmd().args(args).arg("--out").arg(&out).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for n in needles {
        assert!(stderr.contains(n), "`{n}` not in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(assert.get_output().stdout.is_empty());
    let files = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "a failed run left files behind");
}

#[test]
fn bad_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rejects(
        &["simulate", "--virtual", "--trace", "no-such-trace"],
        &["unknown trace `no-such-trace`", "spike"],
    );
    rejects(
        &["simulate", "--virtual", "--strategy", "fifo"],
        &["unknown contender `fifo`", "queue-wait"],
    );
    rejects(
        &["compare", "--virtual", "--contenders", "erlang,bogus"],
        &["unknown contender `bogus`"],
    );
    rejects(&["simulate", "--virtual", "--speed", "0"], &["--speed"]);
    let t = write_trace(
        d,
        "syntax.toml",
        "name = \"x\"\n[[phase]]\nduration_s = = 3\n",
    );
    rejects(
        &["simulate", "--virtual", "--trace", &t],
        &["syntax.toml", "line 3"],
    );
    let t = write_trace(
        d,
        "unknown.toml",
        "name = \"x\"\n[[phase]]\nduration_s = 30\nrate = 20\nburst = 3\n",
    );
    rejects(
        &["simulate", "--virtual", "--trace", &t],
        &["line 5", "`phase[1].burst`", "unknown field"],
    );
    let t = write_trace(d, "neg.toml", "[[phase]]\nduration_s = 30\nrate = -5\n");
    rejects(
        &["simulate", "--virtual", "--trace", &t],
        &["line 3", "`phase[1].rate`", "-5"],
    );
    let t = write_trace(
        d,
        "zero.toml",
        "[[phase]]\nduration_s = 30\nrate = 5\n[[phase]]\nduration_s = 0\nrate = 5\n",
    );
    rejects(
        &["simulate", "--virtual", "--trace", &t],
        &["line 5", "`phase[2].duration_s`"],
    );
    let t = write_trace(
        d,
        "slo.toml",
        "slo_p99_wait_ms = 0\n[[phase]]\nduration_s = 30\nrate = 5\n",
    );
    rejects(
        &["simulate", "--virtual", "--trace", &t],
        &["line 1", "`slo_p99_wait_ms`"],
    );
    let t = write_trace(
        d,
        "type.toml",
        "[[phase]]\nduration_s = 30\nrate = { from = 1, to = \"lots\" }\n",
    );
    rejects(
        &["simulate", "--virtual", "--trace", &t],
        &["line 3", "phase[1].rate"],
    );
    let p = write_trace(d, "policy.toml", "tick_ms = -1\n");
    rejects(
        &["simulate", "--virtual", "--policy", &p],
        &["policy", "tick_ms"],
    );
}

#[test]
fn an_unwritable_output_folder_is_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    cmd()
        .args(["simulate", "--virtual", "--trace", "step", "--out"])
        .arg(file.join("sub"))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("cannot write to output folder"));
}
