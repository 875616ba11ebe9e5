//! The Prometheus exporter against the real tools: `promtool check metrics` on the exposition,
//! the `/metrics` endpoint's limits, and a real Prometheus scraping an autoscaled pool under a
//! known load, whose query answers must agree with the pool's own figures.
//!
//! Debian's `prometheus` package (which brings `promtool`) is installed with apt when missing
//! (as root). Where that is impossible the tools tests print why and skip — except under CI
//! (`CI` set), where a missing tool fails the test instead.
#![cfg(all(feature = "prometheus", not(loom)))]

mod common;
use common::{wait_until, PATIENCE};
use elastic_pool::export::{le_bounds_ns, Exporter, MAX_REQUEST_BYTES};
use elastic_pool::histogram::Snapshot;
use elastic_pool::policy::Policy;
use elastic_pool::Pool;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ----- tools -------------------------------------------------------------------------------

struct Tools {
    prometheus: PathBuf,
    promtool: PathBuf,
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn found() -> Option<Tools> {
    Some(Tools {
        prometheus: find_in_path("prometheus")?,
        promtool: find_in_path("promtool")?,
    })
}

fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        Err(format!("{cmd:?} failed ({}): {tail}", out.status))
    }
}

/// Installs Debian's `prometheus` package: `apt-get update` once, then
/// `apt-get install -y --no-install-recommends prometheus`.
fn install() -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if uid != "0" {
        return Err(format!(
            "not root (uid {uid:?}): cannot apt-get install prometheus"
        ));
    }
    if find_in_path("apt-get").is_none() {
        return Err("apt-get is not available".into());
    }
    eprintln!(
        "installing Debian's prometheus package (apt-get update; apt-get install -y prometheus)"
    );
    run_quiet(Command::new("apt-get").args(["update", "-q"]))?;
    run_quiet(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "prometheus",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The tools, installed once per test binary; `None` (after printing why) where they cannot
/// be had. Under CI a missing tool is a failure, not a skip.
fn tools() -> Option<&'static Tools> {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    let t = TOOLS.get_or_init(|| {
        if let Some(t) = found() {
            return Ok(t);
        }
        install()?;
        found().ok_or_else(|| "prometheus/promtool still missing after install".to_owned())
    });
    match t {
        Ok(t) => Some(t),
        Err(why) => {
            if std::env::var_os("CI").is_some() {
                panic!("CI must run the Prometheus tests, but: {why}");
            }
            eprintln!("SKIPPED: Prometheus tools unavailable: {why}");
            None
        }
    }
}

// ----- a little HTTP client ------------------------------------------------------------------

/// One HTTP/1.0 request (so that the answer is never chunked); returns status and body.
fn http(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http(
        addr,
        &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ----- parsing the exposition ------------------------------------------------------------------

/// The value of the first sample whose series (name and labels, as written) starts with
/// `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// What Prometheus' `histogram_quantile` computes from cumulative buckets `(le, count)`
/// (`le` ascending, the last `+Inf`): the bucket where rank `q·count` falls, interpolated
/// linearly from its lower bound (0 for the first).
fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let total = buckets.last().unwrap().1;
    let rank = q * total;
    let i = buckets.iter().position(|&(_, c)| c >= rank).unwrap();
    if i == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    let (lo, below) = if i == 0 { (0.0, 0.0) } else { buckets[i - 1] };
    let (hi, c) = buckets[i];
    if c == below {
        return hi;
    }
    lo + (hi - lo) * (rank - below) / (c - below)
}

/// The exported buckets of a snapshot, `(le seconds, cumulative count)`, as the exporter
/// writes them.
fn coarse(s: &Snapshot) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut cum = 0u64;
    let mut next = 0;
    for le in le_bounds_ns() {
        let i = elastic_pool::histogram::bucket_index(le);
        cum += s.counts()[next..=i].iter().sum::<u64>();
        next = i + 1;
        out.push((le as f64 / 1e9, cum as f64));
    }
    cum += s.counts()[next..].iter().sum::<u64>();
    out.push((f64::INFINITY, cum as f64));
    out
}

/// The exported bucket `(lower, upper]` in seconds that holds `secs`.
fn coarse_bucket_of(secs: f64) -> (f64, f64) {
    let mut lo = 0.0;
    for le in le_bounds_ns() {
        let le = le as f64 / 1e9;
        if secs <= le {
            return (lo, le);
        }
        lo = le;
    }
    (lo, f64::INFINITY)
}

// ----- promtool and the endpoint -------------------------------------------------------------

/// A pool that ran 40 short tasks (and, if `panics`, one that panicked; its message shows in
/// the test output).
fn busy_pool(name: &str, exporter: &Exporter, panics: bool) -> Pool {
    let pool = Pool::builder()
        .max_workers(4)
        .queue_capacity(8)
        .wait_sampling(1)
        .build()
        .unwrap();
    exporter.register(name, &pool).unwrap();
    for i in 0..40u64 {
        pool.execute(move || std::thread::sleep(Duration::from_micros(100 * (i % 7))))
            .unwrap();
    }
    if panics {
        pool.execute(|| panic!("a task that panics (on purpose)"))
            .unwrap();
    }
    assert!(wait_until(PATIENCE, || {
        let s = pool.stats();
        s.queued == 0 && s.busy == 0 && s.completed == s.submitted
    }));
    pool
}

#[test]
fn promtool_accepts_the_exposition() {
    let Some(tools) = tools() else { return };
    let exporter = Exporter::new();
    let a = busy_pool("thumbnails", &exporter, true);
    let auto = Pool::builder()
        .autoscale(Policy {
            tick_ms: 20.0,
            ..Policy::default()
        })
        .build()
        .unwrap();
    exporter
        .register("odd \"name\"\\ with\nnewline", &auto)
        .unwrap();
    assert!(wait_until(PATIENCE, || auto.demand_workers().is_some()));
    let text = exporter.render();
    let mut child = Command::new(&tools.promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
    // The figures are the pool's own.
    let s = a.stats();
    let p = "{pool=\"thumbnails\"}";
    assert_eq!(
        sample(&text, &format!("elastic_pool_tasks_submitted_total{p}")),
        Some(s.submitted as f64)
    );
    assert_eq!(
        sample(&text, &format!("elastic_pool_tasks_panicked_total{p}")),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "elastic_pool_tasks_rejected_total{pool=\"thumbnails\",reason=\"overloaded\"}"
        ),
        Some(s.rejected_overloaded as f64)
    );
    assert_eq!(
        sample(&text, &format!("elastic_pool_workers_max{p}")),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, &format!("elastic_pool_queue_wait_seconds_count{p}")),
        Some(s.wait_samples as f64)
    );
    assert!(text.contains(&format!(
        "elastic_pool_build_info{{version=\"{}\"}} 1",
        elastic_pool::export::VERSION
    )));
    // Cumulative buckets: non-decreasing, ending in +Inf = _count.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("elastic_pool_service_time_seconds_bucket{pool=\"thumbnails\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), le_bounds_ns().len() + 1);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(buckets.last(), Some(&(s.run_samples as f64)));
}

#[test]
fn the_endpoint_serves_only_get_and_head_of_metrics() {
    let exporter = Exporter::new();
    let _pool = busy_pool("p", &exporter, false);
    let server = exporter.serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());

    let (status, body) = get(addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("elastic_pool_workers{pool=\"p\"}"), "{body}");
    let (status, body) = get(addr, "/metrics?debug=1").unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(addr, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!((status, body.as_str()), (200, ""));
    for path in [
        "/",
        "/metrics/",
        "/debug/pprof",
        "/../../etc/passwd",
        "/-/quit",
    ] {
        assert_eq!(get(addr, path).unwrap().0, 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "TRACE"] {
        let (status, body) = http(addr, &format!("{method} /metrics HTTP/1.1\r\n\r\n")).unwrap();
        assert_eq!(status, 405, "{method}");
        assert!(!body.contains("elastic_pool"));
    }
    assert_eq!(http(addr, "garbage\r\n\r\n").unwrap().0, 400);
    // A request head larger than the bound is refused without reading it all.
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(MAX_REQUEST_BYTES)
    );
    assert_eq!(http(addr, &huge).unwrap().0, 431);
}

#[test]
fn a_slow_client_does_not_hold_the_endpoint() {
    let exporter = Exporter::new();
    let _pool = busy_pool("p", &exporter, false);
    let server = exporter.serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    // Two clients that send half a request and then nothing.
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metr").unwrap();
            s
        })
        .collect();
    // A scrape still gets through, at once.
    let t = Instant::now();
    assert_eq!(get(addr, "/metrics").unwrap().0, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // And the stalled ones are cut off at the request deadline, not held forever.
    for s in &mut stalled {
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "a stalled client got an answer");
    }
}

#[test]
fn dropping_the_server_stops_it() {
    let exporter = Exporter::new();
    let pool = busy_pool("p", &exporter, false);
    let server = exporter.serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    // A connection left open does not keep the server alive.
    let mut open = TcpStream::connect(addr).unwrap();
    open.write_all(b"GET /").unwrap();
    assert_eq!(get(addr, "/metrics").unwrap().0, 200);
    let t = Instant::now();
    drop(server);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t.elapsed()
    );
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    // The open connection was closed by the server.
    open.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(open.read(&mut [0u8; 16]).unwrap_or(0), 0);
    // The exporter no longer serves, but the registry still renders; and it releases the
    // pool on unregister.
    assert!(exporter.render().contains("pool=\"p\""));
    assert!(exporter.unregister("p"));
    assert!(!exporter.unregister("p"));
    assert!(!exporter.render().contains("pool=\"p\""));
    drop(pool);
}

#[test]
fn names_must_be_unique_and_non_empty() {
    use elastic_pool::export::ExportError;
    let exporter = Exporter::new();
    let pool = Pool::builder().build().unwrap();
    let typed = Pool::builder().build_typed(|_: u32| ()).unwrap();
    exporter.register("a", &pool).unwrap();
    exporter.register("b", &typed).unwrap();
    assert_eq!(exporter.register("", &pool), Err(ExportError::EmptyName));
    assert_eq!(
        exporter.register("a", &typed),
        Err(ExportError::DuplicateName("a".into()))
    );
    assert_eq!(exporter.names(), ["a", "b"]);
}

/// The PromQL of the manifests in deploy/: KEDA's trigger queries, and prometheus-adapter's
/// `metricsQuery` templates with `<<.Series>>` and `<<.LabelMatchers>>` filled in as the
/// adapter would for the HPA's selector.
fn deploy_queries() -> Vec<String> {
    use serde_norway::Value as Y;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for d in serde_norway::Deserializer::from_str(&text) {
            let doc: Y = serde::Deserialize::deserialize(d).unwrap();
            if let Some(triggers) = doc["spec"]["triggers"].as_sequence() {
                for t in triggers {
                    out.push(t["metadata"]["query"].as_str().unwrap().to_owned());
                }
            }
            if let Some(config) = doc["data"]["config.yaml"].as_str() {
                let config: Y = serde_norway::from_str(config).unwrap();
                for rule in config["externalRules"].as_sequence().unwrap() {
                    let series = rule["seriesQuery"].as_str().unwrap();
                    let name = &series[..series.find('{').unwrap()];
                    let q = rule["metricsQuery"].as_str().unwrap();
                    out.push(
                        q.replace("<<.Series>>", name)
                            .replace("<<.LabelMatchers>>", "namespace=\"shop\",pool=\"images\""),
                    );
                }
            }
        }
    }
    assert!(out.len() >= 4, "{out:?}");
    out
}

#[test]
fn the_deploy_queries_are_valid_promql() {
    let Some(tools) = tools() else { return };
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let file = std::env::temp_dir().join(format!(
        "elastic-pool-rules-{}-{stamp}.yml",
        std::process::id()
    ));
    let mut rules = String::from("groups:\n  - name: deploy\n    rules:\n");
    for (i, q) in deploy_queries().iter().enumerate() {
        let quoted = serde_json::to_string(q).unwrap(); // a JSON string is a YAML string
        rules.push_str(&format!(
            "      - record: deploy:query_{i}\n        expr: {quoted}\n"
        ));
    }
    std::fs::write(&file, &rules).unwrap();
    let out = Command::new(&tools.promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- the real thing --------------------------------------------------------------------------

/// Kills and reaps the process, and removes the scratch folder, whatever happens.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Runs an instant query (at `time`, Unix seconds, or now); `Some(result)` once
    /// Prometheus answered successfully.
    fn query_at(&self, promql: &str, time: Option<f64>) -> Option<Vec<Value>> {
        let at = time.map(|t| format!("&time={t:.3}")).unwrap_or_default();
        let path = format!("/api/v1/query?query={}{at}", urlencode(promql));
        let (status, body) = get(self.addr, &path).ok()?;
        if status != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["status"] == "success").then(|| v["data"]["result"].as_array().cloned())?
    }

    /// The single value of an instant query, once it has exactly one finite one.
    fn value_at(&self, promql: &str, time: Option<f64>) -> Option<f64> {
        let r = self.query_at(promql, time)?;
        if r.len() != 1 {
            return None;
        }
        let v: f64 = r[0]["value"][1].as_str()?.parse().ok()?;
        v.is_finite().then_some(v)
    }

    fn value(&self, promql: &str) -> Option<f64> {
        self.value_at(promql, None)
    }

    /// The timestamps of the raw samples of a range-vector selector at `time`.
    fn sample_times(&self, selector: &str, time: f64) -> Option<Vec<f64>> {
        let r = self.query_at(selector, Some(time))?;
        let values = r.first()?["values"].as_array()?;
        values.iter().map(|v| v[0].as_f64()).collect()
    }
}

fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(bin: &Path, target: SocketAddr) -> Prometheus {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("elastic-pool-prom-{}-{stamp}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: elastic_pool\n    scrape_interval: 1s\n    scrape_timeout: 900ms\n\
         \x20   static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_loopback_port())
        .parse()
        .unwrap();
    let child = Command::new(bin)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Prometheus { child, dir, addr }
}

/// Polls `f` until it yields, or panics with `what` and Prometheus' log after `deadline`.
fn eventually<T>(
    prom: &mut Prometheus,
    what: &str,
    deadline: Duration,
    mut f: impl FnMut(&Prometheus) -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f(prom) {
            return v;
        }
        if let Ok(Some(status)) = prom.child.try_wait() {
            panic!(
                "prometheus exited ({status}) while waiting for {what}:\n{}",
                prom.log()
            );
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}:\n{}",
            prom.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// What the test records about the pool while it runs, with wall-clock times.
struct Record {
    at: f64,
    demand: Option<f64>,
    wait: Box<Snapshot>,
}

/// Arrivals per second and service time of the load: 200/s × 10 ms keeps about two workers
/// busy, which the autoscaler must grow to from one.
const RATE: f64 = 200.0;
const SERVICE: Duration = Duration::from_millis(10);
/// The run: long enough for a 10 s rate window to lie entirely within the load.
const LOAD: Duration = Duration::from_secs(18);

#[test]
fn prometheus_scrapes_the_pool_and_agrees_with_it() {
    let Some(tools) = tools() else { return };
    let pool = Pool::builder()
        .autoscale(Policy {
            min_workers: 1,
            max_workers: 16,
            ..Policy::default()
        })
        .build()
        .unwrap();
    let exporter = Exporter::new();
    exporter.register("e2e", &pool).unwrap();
    let server = exporter.serve("127.0.0.1:0").unwrap();
    let mut prom = start_prometheus(&tools.prometheus, server.local_addr());

    // Ready, and scraping us.
    eventually(&mut prom, "/-/ready", PATIENCE, |p| {
        matches!(get(p.addr, "/-/ready"), Ok((200, _))).then_some(())
    });
    eventually(&mut prom, "the first scrape", PATIENCE, |p| {
        p.value("up{job=\"elastic_pool\"}").filter(|&v| v == 1.0)
    });

    // The load: an open-loop schedule of 10 ms sleeps at 200/s, and a recorder of the
    // pool's own figures every 100 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let records: Arc<Mutex<Vec<Record>>> = Arc::default();
    let started = Instant::now();
    let load_started_unix = unix_now();
    let gen = {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let mut k = 0u64;
            while started.elapsed() < LOAD {
                let due = started + Duration::from_secs_f64(k as f64 / RATE);
                if let Some(d) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d); // the arrival schedule, not a synchronisation
                }
                pool.execute(|| std::thread::sleep(SERVICE)).unwrap();
                k += 1;
            }
            k
        })
    };
    let recorder = {
        let (pool, stop, records) = (pool.clone(), Arc::clone(&stop), Arc::clone(&records));
        std::thread::spawn(move || {
            while !stop.load(Acquire) {
                let mut wait = Box::new(Snapshot::new());
                let mut service = Snapshot::new();
                pool.histograms(&mut wait, &mut service);
                let demand = pool.demand_workers();
                records.lock().unwrap().push(Record {
                    at: unix_now(),
                    demand,
                    wait,
                });
                std::thread::sleep(Duration::from_millis(100)); // the sampling period
            }
        })
    };

    // Once the 10 s window lies within the load (after a second of warm-up), ask.
    let p = "pool=\"e2e\"";
    let q_p99 = format!(
        "histogram_quantile(0.99, sum by (le) (rate(elastic_pool_queue_wait_seconds_bucket{{{p}}}[10s])))"
    );
    let q_submitted = format!("rate(elastic_pool_tasks_submitted_total{{{p}}}[10s])");
    let q_completed = format!("rate(elastic_pool_tasks_completed_total{{{p}}}[10s])");
    let q_busy = format!("rate(elastic_pool_busy_seconds_total{{{p}}}[10s])");
    let q_service = format!(
        "rate(elastic_pool_service_time_seconds_sum{{{p}}}[10s]) / rate(elastic_pool_service_time_seconds_count{{{p}}}[10s])"
    );
    let q_demand = format!("elastic_pool_demand_workers{{{p}}}");
    // Ten scrapes in the window, the first of them a second into the load.
    let q_count = format!("count_over_time(elastic_pool_tasks_submitted_total{{{p}}}[10s])");
    let q_first = format!("min_over_time(elastic_pool_tasks_submitted_total{{{p}}}[10s])");
    let window_full = |pr: &Prometheus| {
        let n = pr.value(&q_count)?;
        let first = pr.value(&q_first)?;
        (n >= 9.0 && first >= 3.0 * RATE).then_some(())
    };
    eventually(
        &mut prom,
        "a 10 s window of load",
        LOAD + PATIENCE,
        window_full,
    );
    // Evaluate the window at a fixed time 2 s back, so that every scrape in it has been
    // stored and the window's raw samples can be listed too.
    let asked_at = unix_now() - 2.0;
    let got_p99 = eventually(&mut prom, "p99 wait", PATIENCE, |p| {
        p.value_at(&q_p99, Some(asked_at))
    });
    let q_raw = format!("elastic_pool_queue_wait_seconds_count{{{p}}}[10s]");
    let scraped = eventually(&mut prom, "the window's samples", PATIENCE, |pr| {
        pr.sample_times(&q_raw, asked_at).filter(|t| t.len() >= 2)
    });
    fn at_time(q: &str, t: f64) -> impl FnMut(&Prometheus) -> Option<f64> + '_ {
        move |pr| pr.value_at(q, Some(t))
    }
    let at_asked = |q| at_time(q, asked_at);
    let got_submitted = eventually(
        &mut prom,
        "submitted rate",
        PATIENCE,
        at_asked(&q_submitted),
    );
    let got_completed = eventually(
        &mut prom,
        "completed rate",
        PATIENCE,
        at_asked(&q_completed),
    );
    let got_busy = eventually(&mut prom, "busy rate", PATIENCE, at_asked(&q_busy));
    let got_service = eventually(&mut prom, "mean service", PATIENCE, at_asked(&q_service));
    let got_demand = eventually(&mut prom, "demand", PATIENCE, |p| p.value(&q_demand));
    // The manifests' own queries, aimed at this pool.
    let ours = |q: &str| {
        q.replace("namespace=\"shop\",", "")
            .replace("pool=\"images\"", p)
    };
    let keda: Vec<String> = deploy_queries()
        .iter()
        .filter(|q| q.contains("vector(0)"))
        .map(|q| ours(q))
        .collect();
    assert_eq!(keda.len(), 2, "{keda:?}");
    let keda_values: Vec<f64> = keda
        .iter()
        .map(|q| eventually(&mut prom, q, PATIENCE, |pr| pr.value(q)))
        .collect();
    assert!(
        started.elapsed() < LOAD,
        "the queries ran after the load: make LOAD longer"
    );

    let submitted_n = gen.join().unwrap();
    stop.store(true, Release);
    recorder.join().unwrap();
    let records = Arc::try_unwrap(records).ok().unwrap().into_inner().unwrap();

    // 1. Rates: the known arrival rate; the known service time (a sleep only overshoots);
    //    and Little's law, busy workers = throughput × mean service time.
    let busy_expected = RATE * SERVICE.as_secs_f64();
    let little = got_completed * got_service;
    println!(
        "rate(submitted)={got_submitted:.1}/s rate(completed)={got_completed:.1}/s (known {RATE}/s); \
         mean service {got_service:.5} s (known {:.3} s); rate(busy_seconds)={got_busy:.3} \
         (X·S = {little:.3}, λ·S = {busy_expected:.3})",
        SERVICE.as_secs_f64()
    );
    assert!(
        (got_submitted / RATE - 1.0).abs() < 0.1,
        "submitted rate {got_submitted}"
    );
    assert!(
        (got_completed / RATE - 1.0).abs() < 0.1,
        "completed rate {got_completed}"
    );
    let s_known = SERVICE.as_secs_f64();
    assert!(
        got_service >= s_known && got_service < 2.0 * s_known,
        "mean service {got_service} s"
    );
    // A busy period also covers the hand-over from one task to the next.
    assert!(
        got_busy >= 0.95 * little && got_busy <= 1.2 * little,
        "busy workers {got_busy}, X·S {little}"
    );

    // 2. Demand: Prometheus' latest value is one the pool reported in the seconds before.
    let recent: Vec<f64> = records
        .iter()
        .filter(|r| r.at >= asked_at - 5.0 && r.at <= asked_at + 1.0)
        .filter_map(|r| r.demand)
        .collect();
    let mut distinct = recent.clone();
    distinct.dedup();
    println!("demand: prometheus {got_demand:.4}, pool (last 5 s) {distinct:?}");
    assert!(
        recent.iter().any(|d| (d - got_demand).abs() < 1e-6),
        "demand {got_demand} not among the pool's {recent:?}"
    );
    assert!(
        got_demand >= 0.8 * busy_expected,
        "demand {got_demand} < λ·S"
    );
    let keda_demand = keda_values[keda.iter().position(|q| q.contains("demand")).unwrap()];
    let keda_p99 = keda_values[keda.iter().position(|q| q.contains("quantile")).unwrap()];
    println!("KEDA queries: demand {keda_demand}, fleet p99 wait {keda_p99:.6} s");
    assert!(
        recent.iter().any(|d| (d - keda_demand).abs() < 1e-6),
        "KEDA demand {keda_demand} not among the pool's {recent:?}"
    );
    assert!(keda_p99 > 0.0 && keda_p99 < 1.0, "KEDA p99 {keda_p99}");

    // 3. p99 wait over the window: the pool's own histogram between the recorder's snapshots
    //    nearest the window's first and last scrape. Prometheus interpolates inside an
    //    exported bucket (and extrapolates each bucket's rate to the window's edges), and our
    //    snapshots lie up to 50 ms from the scrapes, so the two must land in the same
    //    exported bucket or a neighbouring one.
    let at = |t: f64| {
        records
            .iter()
            .min_by(|a, b| (a.at - t).abs().total_cmp(&(b.at - t).abs()))
            .unwrap()
    };
    let (first, last) = (scraped[0], *scraped.last().unwrap());
    let (a, b) = (at(first), at(last));
    println!(
        "window: {} scrapes from {:.3} to {:.3}; pool snapshots at {:.3} and {:.3}",
        scraped.len(),
        first - load_started_unix,
        last - load_started_unix,
        a.at - load_started_unix,
        b.at - load_started_unix
    );
    let mut window = Snapshot::new();
    b.wait.delta_into(&a.wait, &mut window);
    let own_p99 = window.quantile(0.99).unwrap() as f64 / 1e9;
    let bounds: Vec<f64> = le_bounds_ns().iter().map(|&n| n as f64 / 1e9).collect();
    let idx = |s: f64| {
        bounds
            .iter()
            .position(|&le| s <= le)
            .unwrap_or(bounds.len())
    };
    println!(
        "p99 wait over 10 s: prometheus {:.6} s, pool {:.6} s ({} samples); exported buckets {} and {}",
        got_p99,
        own_p99,
        window.count(),
        idx(got_p99),
        idx(own_p99)
    );
    assert!(
        idx(got_p99).abs_diff(idx(own_p99)) <= 1,
        "p99: prometheus {got_p99} s vs pool {own_p99} s"
    );

    // 4. After the load: once Prometheus has scraped the final counts, its totals are the
    //    pool's exactly, and the cumulative p99 is the pool's within one exported bucket.
    assert!(wait_until(PATIENCE, || {
        let s = pool.stats();
        s.queued == 0 && s.busy == 0 && s.completed == s.submitted
    }));
    let s = pool.stats();
    assert_eq!(s.submitted, submitted_n);
    let mut wait = Snapshot::new();
    let mut service = Snapshot::new();
    pool.histograms(&mut wait, &mut service);
    let total_q = format!("elastic_pool_tasks_completed_total{{{p}}}");
    eventually(&mut prom, "the final scrape", PATIENCE, |pr| {
        pr.value(&total_q).filter(|&v| v == s.completed as f64)
    });
    let count_q = format!("elastic_pool_queue_wait_seconds_count{{{p}}}");
    let got_count = eventually(&mut prom, "the final histogram", PATIENCE, |pr| {
        pr.value(&count_q).filter(|&v| v == wait.count() as f64)
    });
    let got_cum_p99 = eventually(&mut prom, "cumulative p99", PATIENCE, |pr| {
        pr.value(&format!(
            "histogram_quantile(0.99, sum by (le) (elastic_pool_queue_wait_seconds_bucket{{{p}}}))"
        ))
    });
    let own_cum_p99 = wait.quantile(0.99).unwrap() as f64 / 1e9;
    let (lo, hi) = coarse_bucket_of(own_cum_p99);
    let expected = histogram_quantile(0.99, &coarse(&wait));
    println!(
        "cumulative p99 wait: prometheus {got_cum_p99:.6} s, pool {own_cum_p99:.6} s (bucket ({lo:.6}, {hi:.6}]), \
         histogram_quantile of the exported buckets {expected:.6} s; {got_count} samples of {} tasks",
        s.submitted
    );
    assert!(
        (got_cum_p99 - expected).abs() <= 1e-9 * expected.max(1.0),
        "{got_cum_p99} vs {expected}"
    );
    assert!(
        got_cum_p99 >= lo - 1e-12 && got_cum_p99 <= hi + 1e-12,
        "prometheus p99 {got_cum_p99} outside ({lo}, {hi}] holding the pool's {own_cum_p99}"
    );
    let ups = pool.decisions().iter().filter(|d| d.to > d.from).count() as f64;
    let got_ups = eventually(&mut prom, "scale events", PATIENCE, |pr| {
        pr.value(&format!(
            "elastic_pool_scale_events_total{{{p},direction=\"up\"}}"
        ))
    });
    println!("scale-ups: prometheus {got_ups}, pool decisions {ups}; load {:.1} s from {load_started_unix:.0}", LOAD.as_secs_f64());
    assert!(
        got_ups >= 1.0 && got_ups == ups,
        "scale-ups {got_ups} vs {ups}"
    );
    drop(prom);
    drop(server);
}
