//! The small chart of a job's recent runs: inline SVG built on the server, one bar per
//! run, its height the run's duration and its colour the run's status (CSS classes),
//! each bar a link to the run's log with a text alternative. Every bar is at least
//! [`MIN_BAR`] tall, so runs shorter than the logs' one-second resolution stay
//! visible, and [`scale_text`] says in words what the tallest bar means. Pure.

use super::view::RunRow;

/// Width of a bar and the gap after it, in SVG units.
const BAR: u32 = 10;
const GAP: u32 = 3;
/// Height of the chart.
const HEIGHT: u32 = 32;
/// The least height of a bar, in SVG units (a quarter of the chart).
pub(super) const MIN_BAR: u32 = 8;

/// The runs a chart of at most `max` bars shows: the newest.
fn shown(runs: &[RunRow], max: usize) -> &[RunRow] {
    &runs[runs.len().saturating_sub(max)..]
}

/// The longest known duration among the shown runs, in seconds.
fn longest(shown: &[RunRow]) -> Option<f64> {
    shown
        .iter()
        .filter_map(|r| r.seconds)
        .fold(None, |acc: Option<f64>, s| {
            Some(acc.map_or(s, |a| a.max(s)))
        })
}

/// The scale of the chart of `runs` in words: `longest 12 s` (the tallest bar), or
/// `all under 1 s` when every run took less than the logs' one-second resolution;
/// empty without runs.
pub(super) fn scale_text(runs: &[RunRow], max: usize) -> String {
    let shown = shown(runs, max);
    match longest(shown) {
        _ if shown.is_empty() => String::new(),
        None => "durations unknown".to_string(),
        Some(s) if s < 1.0 && shown.len() == 1 => "took under 1 s".to_string(),
        Some(s) if s < 1.0 => "all under 1 s".to_string(),
        Some(s) => format!(
            "longest {}",
            super::view::human_duration(
                std::time::Duration::try_from_secs_f64(s).unwrap_or_default()
            )
        ),
    }
}

/// The SVG of `runs` (oldest first), at most `max` of the newest.
pub(super) fn runs_svg(runs: &[RunRow], max: usize) -> String {
    let shown = shown(runs, max);
    if shown.is_empty() {
        return String::new();
    }
    let longest = longest(shown).unwrap_or(0.0);
    let scale = scale_text(runs, max);
    let slots = u32::try_from(max.max(shown.len())).unwrap_or(u32::MAX);
    let width = slots.saturating_mul(BAR + GAP);
    let summary: Vec<String> = shown
        .iter()
        .map(|r| format!("#{} {} {}", r.counter, r.status, r.duration))
        .collect();
    let mut svg = format!(
        "<svg class=\"runs-chart\" viewBox=\"0 0 {width} {HEIGHT}\" width=\"{width}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"Recent runs ({}): {}\">",
        escape(&scale),
        escape(&summary.join(", "))
    );
    for (i, run) in shown.iter().enumerate() {
        let x = u32::try_from(i).unwrap_or(0) * (BAR + GAP);
        // Unknown durations get a full bar; all runs under a second the least one.
        let ratio = match run.seconds {
            None => 1.0,
            Some(_) if longest <= 0.0 => 0.0,
            Some(s) => (s / longest).clamp(0.0, 1.0),
        };
        let h = (ratio * f64::from(HEIGHT - 2))
            .round()
            .max(f64::from(MIN_BAR));
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
            elapsed_secs: None,
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
        assert!(
            svg.contains("aria-label=\"Recent runs (longest 5 s): #2 failed 5 s, #3 running —\"")
        );
        assert_eq!(runs_svg(&[], 5), "");
    }

    #[test]
    fn short_runs_get_visible_bars_and_a_scale_in_words() {
        let runs = [row(1, "success", Some(0.0)), row(2, "success", Some(0.0))];
        let svg = runs_svg(&runs, 12);
        assert_eq!(
            svg.matches(&format!("height=\"{MIN_BAR}\"")).count(),
            2,
            "{svg}"
        );
        assert_eq!(scale_text(&runs, 12), "all under 1 s");
        assert!(
            svg.contains("aria-label=\"Recent runs (all under 1 s): "),
            "{svg}"
        );
        let runs = [row(1, "success", Some(40.0)), row(2, "failed", Some(0.0))];
        let svg = runs_svg(&runs, 12);
        assert!(svg.contains("height=\"30\""), "{svg}");
        assert!(svg.contains(&format!("height=\"{MIN_BAR}\"")), "{svg}");
        assert_eq!(scale_text(&runs, 12), "longest 40 s");
        assert_eq!(scale_text(&runs[1..], 12), "took under 1 s");
        assert_eq!(scale_text(&[], 12), "");
    }
}
