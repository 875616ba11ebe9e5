//! Bad command-line arguments, every flag and every class of bad value: each run exits with
//! code 2, prints one clear error naming what is wrong on stderr, prints nothing on stdout,
//! writes no file, and never panics.

use assert_cmd::Command;

fn cmd() -> Command {
    Command::cargo_bin("elastic-pool").expect("the binary is built")
}

/// Runs `args` (with `--out` pointing into a fresh folder for the run commands) and checks
/// a clean refusal. Returns stderr.
fn refused(args: &[&str], needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut c = cmd();
    c.args(args);
    let runs = matches!(args.first(), Some(&"simulate") | Some(&"compare"));
    if runs && !args.contains(&"--out") {
        c.arg("--out").arg(&out);
    }
    let assert = c.timeout(std::time::Duration::from_secs(60)).assert();
    let o = assert.get_output();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?}: exit {:?}\nstderr: {stderr}\nstdout: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{args:?} panicked: {stderr}"
    );
    assert!(
        o.stdout.is_empty(),
        "{args:?} printed to stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    for n in needles {
        assert!(
            stderr.contains(n),
            "{args:?}: `{n}` not in stderr:\n{stderr}"
        );
    }
    let files = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "{args:?} left files in the output folder");
    stderr
}

#[test]
fn commands_and_flags_that_do_not_exist() {
    refused(&[], &["Usage"]);
    refused(&["simulat"], &["simulat"]);
    refused(&["simulate", "--bogus"], &["--bogus"]);
    refused(&["simulate", "--virtual", "extra"], &["extra"]);
    refused(&["traces", "--show"], &["--show"]);
    refused(
        &["simulate", "--virtual", "--seed", "1", "--seed", "2"],
        &["--seed"],
    );
    refused(&["simulate", "--json=yes", "--virtual"], &["--json"]);
}

#[test]
fn seed_must_be_a_whole_number() {
    for v in [
        "-1",
        "abc",
        "1.5",
        "1e3",
        "",
        "nan",
        "99999999999999999999999",
    ] {
        let arg = format!("--seed={v}");
        refused(
            &["simulate", "--virtual", &arg],
            &["--seed", "invalid value"],
        );
    }
}

#[test]
fn speed_must_be_a_positive_finite_number_up_to_the_limit() {
    for v in ["0", "-1", "nan", "NaN", "inf", "-inf", "1e9", "1001"] {
        let arg = format!("--speed={v}");
        refused(&["simulate", "--virtual", &arg], &["--speed"]);
    }
    for v in ["abc", "", "1,5"] {
        let arg = format!("--speed={v}");
        refused(
            &["simulate", "--virtual", &arg],
            &["--speed", "invalid value"],
        );
    }
}

#[test]
fn trace_must_be_a_built_in_or_a_readable_trace_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    refused(
        &["simulate", "--virtual", "--trace", ""],
        &["unknown trace ``"],
    );
    refused(
        &["simulate", "--virtual", "--trace", "stpe"],
        &["unknown trace `stpe`", "step"],
    );
    // A folder, an empty file, a binary file, an unreadable path.
    let folder = d.join("folder.toml");
    std::fs::create_dir_all(&folder).unwrap();
    refused(
        &["simulate", "--virtual", "--trace", folder.to_str().unwrap()],
        &["folder.toml"],
    );
    let empty = d.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    refused(
        &["simulate", "--virtual", "--trace", empty.to_str().unwrap()],
        &["empty.toml", "phase"],
    );
    let binary = d.join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    refused(
        &["simulate", "--virtual", "--trace", binary.to_str().unwrap()],
        &["binary.toml"],
    );
}

#[test]
fn policy_must_be_a_readable_valid_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing.toml");
    refused(
        &[
            "simulate",
            "--virtual",
            "--policy",
            missing.to_str().unwrap(),
        ],
        &["missing.toml"],
    );
    let yaml = d.join("p.yaml");
    std::fs::write(&yaml, "tick_ms: 5\n").unwrap();
    refused(
        &["simulate", "--virtual", "--policy", yaml.to_str().unwrap()],
        &["p.yaml", "extension"],
    );
    for (text, field) in [
        ("tick_ms = nan\n", "tick_ms"),
        ("max_workers = 0\n", "max_workers"),
        ("min_workers = -1\n", "min_workers"),
        ("keep_alive_s = \"long\"\n", "keep_alive_s"),
        ("[erlang]\nbogus = 1\n", "erlang.bogus"),
        ("strategy = \"pid\"\n", "strategy"),
    ] {
        let p = d.join("bad.toml");
        std::fs::write(&p, text).unwrap();
        refused(
            &["simulate", "--virtual", "--policy", p.to_str().unwrap()],
            &["bad.toml", field],
        );
    }
    let json = d.join("bad.json");
    std::fs::write(&json, "{\"tick_ms\": -1}").unwrap();
    refused(
        &["simulate", "--virtual", "--policy", json.to_str().unwrap()],
        &["bad.json", "tick_ms"],
    );
    refused(&["simulate", "--virtual", "--policy", ""], &["policy"]);
}

#[test]
fn contenders_must_be_known_with_valid_parameters() {
    for (s, needle) in [
        ("", "contender"),
        ("fifo", "unknown contender `fifo`"),
        ("static:0", "static:0"),
        ("static:-1", "static:-1"),
        ("static:abc", "static:abc"),
        ("static:99999999999999999999", "static:99999999999999999999"),
        ("static:", "static:"),
        ("tpe:1:2", "tpe:CORE:MAX:QUEUE"),
        ("tpe:5:2:10", "CORE (5) exceeds MAX (2)"),
        ("tpe:0:1:1", "CORE"),
        ("tpe:1:1:0", "QUEUE"),
        ("tpe:a:b:c", "CORE"),
    ] {
        refused(&["simulate", "--virtual", "--strategy", s], &[needle]);
    }
    // (An empty item between two commas is skipped: `erlang,,oracle` runs two.)
    for list in ["", ",", "erlang,bogus", " ", "erlang,static:0"] {
        refused(
            &["compare", "--virtual", "--contenders", list],
            &["contender"],
        );
    }
}

#[test]
fn output_folder_must_be_writable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    refused(
        &["simulate", "--virtual", "--out", file.to_str().unwrap()],
        &["output folder"],
    );
    refused(&["simulate", "--virtual", "--out", ""], &["--out"]);
}

#[test]
fn traces_show_needs_a_known_name() {
    refused(&["traces", "--show", ""], &["unknown trace ``"]);
    refused(&["traces", "--show", "../traces/step"], &["unknown trace"]);
}

#[test]
fn soak_duration_must_be_a_positive_finite_duration() {
    for (v, needle) in [
        ("0", "greater than zero"),
        ("-5", "greater than zero"),
        ("0s", "greater than zero"),
        ("nan", "expected a number"),
        ("inf", "expected a number"),
        ("1e999", "finite"),
        ("abc", "expected a number"),
        ("", "expected a number"),
        ("5x", "unknown unit `x`"),
        ("8d", "unknown unit `d`"),
        ("1000000h", "at most"),
        ("1e-9", "at least 1 ms"),
    ] {
        let arg = format!("--duration={v}");
        refused(&["soak", &arg], &["--duration", needle]);
    }
    refused(&["soak", "--duration"], &["--duration"]);
    refused(&["soak", "--bogus"], &["--bogus"]);
    refused(&["soak", "--seed=-1"], &["--seed"]);
}
