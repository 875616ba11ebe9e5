//! The Kubernetes manifests in deploy/ parse as YAML, have the shape KEDA, the HPA and
//! prometheus-adapter expect, query only metrics the exporter writes, and appear verbatim in
//! docs/KUBERNETES.md.
//!
//! Not a schema validation: kubeconform is in none of the package registries this project
//! installs from (apt, PyPI, npm), and it would fetch its schemas from the network.
#![cfg(not(loom))]

use serde_norway::Value;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every deploy/*.yaml file with its documents, sorted by file name.
fn manifests() -> Vec<(String, String, Vec<Value>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let docs = serde_norway::Deserializer::from_str(&text)
                .map(|d| {
                    serde::Deserialize::deserialize(d)
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                })
                .collect();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, text, docs)
        })
        .collect()
}

fn all_docs() -> Vec<Value> {
    manifests().into_iter().flat_map(|(_, _, d)| d).collect()
}

fn of_kind(kind: &str) -> Vec<Value> {
    all_docs()
        .into_iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn s<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

#[test]
fn every_manifest_is_a_kubernetes_object() {
    for (file, _, docs) in manifests() {
        assert!(!docs.is_empty(), "{file}");
        for d in docs {
            s(&d["apiVersion"], "apiVersion");
            s(&d["kind"], "kind");
            s(&d["metadata"]["name"], "metadata.name");
            assert!(
                d["spec"].is_mapping() || d["data"].is_mapping(),
                "{file}: {d:?}"
            );
        }
    }
}

#[test]
fn keda_scales_on_the_demand_and_the_fleet_p99() {
    let so = of_kind("ScaledObject");
    assert_eq!(so.len(), 1);
    let so = &so[0];
    assert_eq!(so["apiVersion"].as_str(), Some("keda.sh/v1alpha1"));
    let spec = &so["spec"];
    assert_eq!(spec["scaleTargetRef"]["kind"].as_str(), Some("Deployment"));
    assert!(spec["minReplicaCount"].as_u64() <= spec["maxReplicaCount"].as_u64());
    let triggers = spec["triggers"].as_sequence().unwrap();
    let by_type = |t: &str| {
        triggers
            .iter()
            .find(|x| x["metricType"].as_str() == Some(t))
            .unwrap_or_else(|| panic!("no {t} trigger"))
    };
    for t in triggers {
        assert_eq!(t["type"].as_str(), Some("prometheus"));
        let m = &t["metadata"];
        // KEDA's trigger metadata is a map of strings: numbers must be quoted.
        for (k, v) in m.as_mapping().unwrap() {
            assert!(v.is_string(), "metadata.{k:?} must be a string, got {v:?}");
        }
        assert!(s(&m["serverAddress"], "serverAddress").starts_with("http"));
        let threshold: f64 = s(&m["threshold"], "threshold").parse().unwrap();
        assert!(threshold > 0.0);
    }
    let demand = s(&by_type("AverageValue")["metadata"]["query"], "query");
    assert!(
        demand.contains("sum(elastic_pool_demand_workers"),
        "{demand}"
    );
    let p99 = s(&by_type("Value")["metadata"]["query"], "query");
    assert!(
        p99.contains("histogram_quantile(0.99, sum by (le)")
            && p99.contains("elastic_pool_queue_wait_seconds_bucket"),
        "{p99}"
    );
}

#[test]
fn the_hpa_uses_the_adapters_external_metrics() {
    let hpa = of_kind("HorizontalPodAutoscaler");
    assert_eq!(hpa.len(), 1);
    let hpa = &hpa[0];
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    let metrics = hpa["spec"]["metrics"].as_sequence().unwrap();
    let adapter = of_kind("ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"].as_str() == Some("prometheus-adapter"))
        .expect("the adapter's ConfigMap");
    let config: Value = serde_norway::from_str(s(&adapter["data"]["config.yaml"], "config.yaml"))
        .expect("the adapter's config.yaml is YAML");
    let served: Vec<&str> = config["externalRules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| s(&r["name"]["as"], "name.as"))
        .collect();
    let mut targets = Vec::new();
    for m in metrics {
        assert_eq!(m["type"].as_str(), Some("External"));
        let name = s(&m["external"]["metric"]["name"], "metric.name");
        assert!(
            served.contains(&name),
            "{name} is not served by the adapter: {served:?}"
        );
        targets.push((name, s(&m["external"]["target"]["type"], "target.type")));
    }
    assert!(targets.contains(&("elastic_pool_demand_workers", "AverageValue")));
    assert!(targets.contains(&("elastic_pool_queue_wait_p99_seconds", "Value")));
    let down = &hpa["spec"]["behavior"]["scaleDown"];
    assert!(down["stabilizationWindowSeconds"].as_u64() >= Some(60));
}

/// Every `elastic_pool_…` name the manifests query.
fn queried_names() -> Vec<String> {
    let mut names = Vec::new();
    for (_, text, _) in manifests() {
        let mut rest = text.as_str();
        while let Some(i) = rest.find("elastic_pool_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(feature = "prometheus")]
#[test]
fn the_manifests_query_only_exported_metrics() {
    let pool = elastic_pool::Pool::builder().build().unwrap();
    let exporter = elastic_pool::export::Exporter::new();
    exporter.register("images", &pool).unwrap();
    let text = exporter.render();
    let mut series: Vec<String> = Vec::new();
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = l.split(' ').skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        series.push(name.to_owned());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                series.push(format!("{name}{suffix}"));
            }
        }
    }
    let names = queried_names();
    assert!(names.len() >= 2, "{names:?}");
    // The adapter's own metric name (a rename, served as an external metric) is not a series.
    for n in names
        .iter()
        .filter(|n| *n != "elastic_pool_queue_wait_p99_seconds")
    {
        assert!(series.contains(n), "{n} is queried but not exported");
    }
}

#[test]
fn the_guide_includes_every_manifest_verbatim() {
    let guide = std::fs::read_to_string(repo().join("docs/KUBERNETES.md")).unwrap();
    for (file, text, _) in manifests() {
        assert!(
            guide.contains(text.trim_end()),
            "docs/KUBERNETES.md does not include deploy/{file} as it is"
        );
    }
}
