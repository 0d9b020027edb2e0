//! Table tests of the policy keys: every key read, each bad value an error with its
//! file and line, and the chain checks (unknown targets, cycles).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::ini;

/// The policies of a one-section file whose body is `body` (line 1 is the header).
fn read(body: &str, interval: Option<Duration>) -> (Policies, Vec<String>) {
    let doc = ini::parse(&format!("[job \"a\"]\n{body}")).unwrap();
    let fields = Fields::new(Path::new("job.d/a.conf"), &doc.sections[0]);
    let mut problems = Problems::default();
    let policies = read_policies(&fields, interval, &mut problems);
    (policies, errors(&problems))
}

fn errors(problems: &Problems) -> Vec<String> {
    problems
        .errors
        .iter()
        .map(|d| format!("{}:{}: {}", d.file.display(), d.line, d.message))
        .collect()
}

#[test]
fn without_keys_a_job_keeps_the_originals_behaviour() {
    let (policies, errors) = read("command = true\n", None);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(policies, Policies::default());
    assert_eq!(policies.overlap, Overlap::Queue);
    assert_eq!(policies.catch_up, CatchUp::None);
    assert_eq!(policies.retry, 0);
}

#[test]
fn every_key_is_read() {
    let (p, errors) = read(
        "retry = 3\nretry_delay = 10s\nretry_delay_max = 5m\nnotif_on_retry = ops\n\
         overlap = Allow\nmax_parallel = 4\ncatch_up = once\ncatch_up_window = 2h\n\
         jitter = 30s\non_success = b, c\non_failure = d\n",
        Some(Duration::from_secs(3600)),
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(p.retry, 3);
    assert_eq!(p.retry_delay, Duration::from_secs(10));
    assert_eq!(p.retry_delay_max, Duration::from_secs(300));
    assert_eq!(p.notif_on_retry, ["ops"]);
    assert_eq!(
        p.overlap,
        Overlap::Allow {
            max_parallel: Some(4)
        }
    );
    assert_eq!(p.catch_up, CatchUp::Once);
    assert_eq!(p.catch_up_window, Duration::from_secs(7200));
    assert_eq!(p.jitter, Duration::from_secs(30));
    let names = |chains: &[Chain]| -> Vec<(String, usize)> {
        chains.iter().map(|c| (c.job.clone(), c.line)).collect()
    };
    assert_eq!(names(&p.on_success), [("b".into(), 11), ("c".into(), 11)]);
    assert_eq!(names(&p.on_failure), [("d".into(), 12)]);
}

#[test]
fn bad_values_are_errors_with_file_and_line() {
    let cases: &[(&str, Option<u64>, &str)] = &[
        (
            "overlap = sometimes\n",
            None,
            "job.d/a.conf:2: overlap = \"sometimes\" is invalid: expected one of queue, skip, replace, allow",
        ),
        (
            "catch_up = twice\n",
            None,
            "job.d/a.conf:2: catch_up = \"twice\" is invalid: expected one of none, once, all",
        ),
        (
            "overlap = skip\nmax_parallel = 2\n",
            None,
            "job.d/a.conf:3: max_parallel needs overlap = allow (runs of one job side by side)",
        ),
        (
            "max_parallel = 2\n",
            None,
            "job.d/a.conf:2: max_parallel needs overlap = allow (runs of one job side by side)",
        ),
        (
            "overlap = allow\nmax_parallel = 0\n",
            None,
            "job.d/a.conf:3: max_parallel = 0 is invalid: expected at least 1",
        ),
        (
            "retry = 3\nretry_delay = 0s\n",
            None,
            "job.d/a.conf:3: retry_delay = \"0s\" is invalid: it must be more than 0s",
        ),
        (
            "retry = -1\n",
            None,
            "job.d/a.conf:2: retry = -1 is invalid: expected 0 to 100 retries",
        ),
        (
            "retry = 2\nretry_delay = 1m\nretry_delay_max = 10s\n",
            None,
            "job.d/a.conf:4: retry_delay_max (10s) is shorter than retry_delay (1m): the longest wait must be at least the first",
        ),
        (
            "jitter = 5m\n",
            Some(300),
            "job.d/a.conf:2: jitter = \"5m\" is not shorter than the interval (5m): a delayed start would meet the next one",
        ),
        (
            "jitter = -1s\n",
            None,
            "job.d/a.conf:2: jitter = \"-1s\" is invalid: it must not be negative",
        ),
    ];
    for (body, interval, want) in cases {
        let (_, errors) = read(body, interval.map(Duration::from_secs));
        assert_eq!(errors, [want.to_string()], "{body}");
    }
}

fn job<'a>(name: &'a str, file: &'a PathBuf, policies: &'a Policies) -> ChainedJob<'a> {
    ChainedJob {
        name,
        file,
        policies,
    }
}

fn chains(success: &[(&str, usize)], failure: &[(&str, usize)]) -> Policies {
    let make = |list: &[(&str, usize)]| {
        list.iter()
            .map(|(job, line)| Chain {
                job: job.to_string(),
                line: *line,
            })
            .collect()
    };
    Policies {
        on_success: make(success),
        on_failure: make(failure),
        ..Policies::default()
    }
}

#[test]
fn a_chain_to_an_unknown_job_names_it_and_the_closest_one() {
    let file = PathBuf::from("job.d/build.conf");
    let build = chains(&[("deploi", 7)], &[]);
    let deploy = Policies::default();
    let jobs = [job("build", &file, &build), job("deploy", &file, &deploy)];
    let mut problems = Problems::default();
    check_chains(&jobs, &mut problems);
    let errors = errors(&problems);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "job.d/build.conf:7: job \"build\" chains to \"deploi\", which is not a job"
        ),
        "{errors:?}"
    );
    assert!(errors[0].contains("deploy"), "{errors:?}");
}

#[test]
fn a_cycle_of_chains_is_one_error_naming_each_file_and_line() {
    let (fa, fb, fc) = (
        PathBuf::from("job.d/a.conf"),
        PathBuf::from("job.d/b.conf"),
        PathBuf::from("job.d/c.conf"),
    );
    let a = chains(&[("b", 4)], &[]);
    let b = chains(&[], &[("c", 5)]);
    let c = chains(&[("A", 6)], &[]);
    let jobs = [job("a", &fa, &a), job("b", &fb, &b), job("c", &fc, &c)];
    let mut problems = Problems::default();
    check_chains(&jobs, &mut problems);
    let errors = errors(&problems);
    assert_eq!(errors.len(), 1, "one cycle, one error: {errors:?}");
    assert!(errors[0].contains("form a cycle"), "{errors:?}");
    for place in ["job.d/a.conf:4", "job.d/b.conf:5", "job.d/c.conf:6"] {
        assert!(errors[0].contains(place), "{place}: {errors:?}");
    }
    // A job chaining to itself is a cycle too; chains without one are fine.
    let me = chains(&[("me", 3)], &[]);
    let mut problems = Problems::default();
    check_chains(&[job("me", &fa, &me)], &mut problems);
    assert_eq!(problems.errors.len(), 1);
    let x = chains(&[("y", 2)], &[("y", 3)]);
    let y = Policies::default();
    let mut problems = Problems::default();
    check_chains(&[job("x", &fa, &x), job("y", &fb, &y)], &mut problems);
    assert!(problems.errors.is_empty());
}
