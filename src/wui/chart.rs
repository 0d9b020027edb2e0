//! The small chart of a job's recent runs: inline SVG built on the server, one bar per
//! run, its height the run's duration and its colour the run's status (CSS classes),
//! each bar a link to the run's log with a text alternative. Pure.

use super::view::RunRow;

/// Width of a bar and the gap after it, in SVG units.
const BAR: u32 = 10;
const GAP: u32 = 3;
/// Height of the chart.
const HEIGHT: u32 = 32;

/// The SVG of `runs` (oldest first), at most `max` of the newest.
pub fn runs_svg(runs: &[RunRow], max: usize) -> String {
    let shown = &runs[runs.len().saturating_sub(max)..];
    if shown.is_empty() {
        return String::new();
    }
    let longest = shown
        .iter()
        .filter_map(|r| r.seconds)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let slots = u32::try_from(max.max(shown.len())).unwrap_or(u32::MAX);
    let width = slots.saturating_mul(BAR + GAP);
    let summary: Vec<String> = shown
        .iter()
        .map(|r| format!("#{} {} {}", r.counter, r.status, r.duration))
        .collect();
    let mut svg = format!(
        "<svg class=\"runs-chart\" viewBox=\"0 0 {width} {HEIGHT}\" width=\"{width}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"Recent runs: {}\">",
        escape(&summary.join(", "))
    );
    for (i, run) in shown.iter().enumerate() {
        let x = u32::try_from(i).unwrap_or(0) * (BAR + GAP);
        let ratio = run.seconds.map_or(1.0, |s| (s / longest).clamp(0.0, 1.0));
        let h = (ratio * f64::from(HEIGHT - 2)).round().max(3.0);
        let y = f64::from(HEIGHT - 1) - h;
        svg.push_str(&format!(
            "<a href=\"{}\" class=\"st-{}\"><title>Run #{}: {}, {}</title><rect class=\"bar\" x=\"{x}\" y=\"{y:.0}\" width=\"{BAR}\" height=\"{h:.0}\" rx=\"2\"/></a>",
            escape(&run.href),
            run.status,
            run.counter,
            run.status,
            escape(&run.duration)
        ));
    }
    svg.push_str(&format!(
        "<line class=\"base\" x1=\"0\" y1=\"{y}\" x2=\"{width}\" y2=\"{y}\"/></svg>",
        y = HEIGHT - 1
    ));
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(counter: u64, status: &'static str, seconds: Option<f64>) -> RunRow {
        RunRow {
            counter,
            status,
            trigger: "timer",
            started: None,
            duration: seconds.map_or("—".into(), |s| format!("{s} s")),
            seconds,
            href: format!("/karajo/app/job/j/log/{counter}"),
        }
    }

    #[test]
    fn bars_scale_with_duration_and_link_to_logs() {
        let runs = [
            row(1, "success", Some(10.0)),
            row(2, "failed", Some(5.0)),
            row(3, "running", None),
        ];
        let svg = runs_svg(&runs, 2);
        assert!(!svg.contains("#1"), "{svg}");
        assert!(svg.contains("href=\"/karajo/app/job/j/log/2\" class=\"st-failed\""));
        assert!(svg.contains("aria-label=\"Recent runs: #2 failed 5 s, #3 running —\""));
        assert_eq!(runs_svg(&[], 5), "");
    }
}
