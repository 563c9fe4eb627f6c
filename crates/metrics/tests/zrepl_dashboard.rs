//! zrepl 0.7.0's official Grafana dashboard (a copy in
//! dist/grafana/zrepl-0.7.0.json) finds every metric and label it queries
//! in zrelay's export with `metric_names: zrepl`.

use std::collections::{BTreeMap, BTreeSet};

mod common;

/// Every PromQL text of the dashboard: panel targets and template variables.
fn queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => queries(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| queries(x, out)),
        _ => {}
    }
}

/// The metric names in a query, each with the label names its selector uses
/// (Prometheus's own `job` and `instance` left out).
fn selectors(q: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut out = Vec::new();
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let word = &q[start..i];
        let is_metric = ["zrepl_", "go_", "process_"].iter().any(|p| word.starts_with(p))
            && (start == 0 || !matches!(b[start - 1], b'$' | b'"' | b'\''))
            // a label name (`by (zrepl_job)`, `label_values(…, zrepl_job)`)
            && word != "zrepl_job";
        if is_metric {
            let mut labels = BTreeSet::new();
            if b.get(i) == Some(&b'{') {
                let end = q[i..].find('}').map_or(q.len(), |e| i + e);
                for part in q[i + 1..end].split(',') {
                    let key = part
                        .split(['=', '!', '~'])
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    if !key.is_empty() && key != "job" && key != "instance" {
                        labels.insert(key);
                    }
                }
                i = end;
            }
            out.push((word.to_string(), labels));
        }
        if i == start {
            i += 1;
        }
    }
    out
}

#[test]
fn zrepls_dashboard_finds_every_metric_and_label() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../dist/grafana/zrepl-0.7.0.json"
    );
    let text = std::fs::read_to_string(path).expect("dist/grafana/zrepl-0.7.0.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let mut qs = Vec::new();
    queries(&dash, &mut qs);
    let wanted: Vec<(String, BTreeSet<String>)> = qs.iter().flat_map(|q| selectors(q)).collect();
    assert!(wanted.len() >= 14, "{qs:#?}");

    // What a daemon exports once its jobs have run: a sample in every family.
    let m = common::with_a_sample_in_every_family();
    let text = m.encode_zrepl();
    let mut exported: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap_or("");
        let labels = exported.entry(name).or_default();
        if let Some(inner) = l.split_once('{').and_then(|(_, r)| r.split_once('}')) {
            for kv in inner.0.split(',') {
                if let Some((k, _)) = kv.split_once('=') {
                    labels.insert(k.to_string());
                }
            }
        }
    }
    for (name, labels) in &wanted {
        let Some(have) = exported.get(name.as_str()) else {
            panic!("the dashboard queries {name}, which is not exported:\n{text}");
        };
        let missing: Vec<&String> = labels.difference(have).collect();
        assert!(
            missing.is_empty(),
            "{name}: the dashboard selects on {missing:?}, exported labels are {have:?}"
        );
    }
}
