//! The Grafana dashboard `etc/grafana/karajo.json` against a running daemon: every
//! metric its queries (panel targets and template variables) name must be in what
//! `GET /karajo/metrics` serves, once the daemon has a job that ran, a heartbeat
//! monitor and a service that restarted, so a renamed metric breaks this test rather than a panel.

use std::collections::BTreeSet;

use crate::helpers::*;

/// Every PromQL expression of the dashboard.
fn queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dashboard];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(q)) => {
                            found.push(q.clone())
                        }
                        ("query", serde_json::Value::Object(q)) => {
                            if let Some(q) = q.get("query").and_then(|q| q.as_str()) {
                                found.push(q.to_string());
                            }
                        }
                        _ => stack.push(v),
                    }
                }
            }
            serde_json::Value::Array(list) => stack.extend(list),
            _ => {}
        }
    }
    found
}

/// The `karajo_*` names in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("karajo_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/etc/grafana/karajo.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    // Panel ids are unique, and every panel reads the chosen Prometheus.
    let panels = dashboard["panels"].as_array().unwrap();
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len());
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
        assert!(!panel["targets"].as_array().unwrap().is_empty(), "{panel}");
    }
    let queried: BTreeSet<String> = queries(&dashboard)
        .iter()
        .flat_map(|q| metric_names(q))
        .collect();
    for wanted in [
        "karajo_runs_total",
        "karajo_run_duration_seconds_bucket",
        "karajo_queue_depth",
        "karajo_webhook_requests_total",
        "karajo_notifications_total",
    ] {
        assert!(
            queried.contains(wanted),
            "the dashboard does not show {wanted}"
        );
    }

    let dir = TestDir::new(
        "[job \"tick\"]\ninterval = 1h\ncommand = echo tick\n\
         [monitor \"backup\"]\nperiod = 1h\ntoken = 0123456789abcdef\n\
         [service \"web\"]\ncommand = sleep 0.2\nrestart = always\n",
    );
    let d = TestDaemon::start(&dir).await;
    let text = wait_for("a run and a service restart to be counted", || async {
        let res = d.http.get(d.url("/karajo/metrics")).send().await.ok()?;
        let text = res.text().await.ok()?;
        (text.contains("karajo_runs_total{")
            && text.contains("karajo_service_up{")
            && text.contains("karajo_service_restarts_total{"))
        .then_some(text)
    })
    .await;
    let exported: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(metric_names)
        .collect();
    let missing: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics karajo does not export: {missing:?}\n{text}"
    );
    d.stop().await;
}
