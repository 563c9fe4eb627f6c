//! The Grafana dashboard in dist/ only queries families this crate exports.

use std::collections::BTreeSet;

mod common;

#[test]
fn every_metric_the_dashboard_queries_exists() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../dist/grafana/zrelay.json"
    );
    let text = std::fs::read_to_string(path).expect("dist/grafana/zrelay.json");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");
    // Families as exported, with a sample of every family recorded.
    let m = common::with_a_sample_in_every_family();
    let text = m.encode_text();
    let exported: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for e in &exprs {
        for name in e
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("zrelay_") && *w != "zrelay_job")
        {
            assert!(
                exported.contains(name),
                "the dashboard queries {name}, which zrelay does not export (in {e}); exported: {exported:?}"
            );
        }
    }
}
