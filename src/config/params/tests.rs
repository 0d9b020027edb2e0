//! Table tests of declared run parameters: reading `param`, bad declarations, the
//! timer-run warning, and the checks of the values a run is given.

use std::path::Path;

use super::*;
use crate::config::ini;

fn read(body: &str, timer: bool) -> (Params, Vec<String>, Vec<String>) {
    let doc = ini::parse(&format!("[job \"a\"]\n{body}")).unwrap();
    let fields = Fields::new(Path::new("job.d/a.conf"), &doc.sections[0]);
    let mut problems = Problems::default();
    let params = read_params(&fields, timer, &mut problems);
    let show = |list: &[crate::config::Diagnostic]| -> Vec<String> {
        list.iter()
            .map(|d| format!("{}:{}: {}", d.file.display(), d.line, d.message))
            .collect()
    };
    (params, show(&problems.errors), show(&problems.warnings))
}

fn given(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

#[test]
fn params_are_read_one_per_line() {
    let (p, errors, warnings) = read(
        "param = env\nparam = TAG=latest\nparam = LIST = a, b\nparam = EMPTY=\n",
        false,
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert!(warnings.is_empty(), "{warnings:?}");
    let got: Vec<(&str, Option<&str>)> = p
        .list
        .iter()
        .map(|p| (p.name.as_str(), p.default.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("ENV", None),
            ("TAG", Some("latest")),
            ("LIST", Some("a, b")),
            ("EMPTY", Some(""))
        ]
    );
    assert_eq!(
        p.describe().unwrap(),
        "params: ENV (required), TAG=latest, LIST=a, b, EMPTY="
    );
    assert_eq!(
        p.defaults(),
        given(&[
            ("KARAJO_PARAM_TAG", "latest"),
            ("KARAJO_PARAM_LIST", "a, b"),
            ("KARAJO_PARAM_EMPTY", "")
        ])
    );
}

#[test]
fn bad_params_are_errors_with_file_and_line() {
    let (p, errors, _) = read(
        "param = 1x\nparam = a, b\nparam =\nparam = ok\nparam = OK=again\nparam = has-dash=1\n",
        false,
    );
    assert_eq!(p.list.len(), 1);
    let lines: Vec<&str> = errors.iter().map(|e| &e[..15]).collect();
    assert_eq!(
        lines,
        [
            "job.d/a.conf:2:",
            "job.d/a.conf:3:",
            "job.d/a.conf:4:",
            "job.d/a.conf:6:",
            "job.d/a.conf:7:"
        ],
        "{errors:?}"
    );
    assert!(errors[0].contains("one per line"), "{errors:?}");
    assert!(errors[3].contains("declared twice"), "{errors:?}");
}

#[test]
fn a_timer_job_with_a_required_param_is_warned_about() {
    let (_, errors, warnings) = read("param = ENV\nparam = TAG=x\n", true);
    assert!(errors.is_empty());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("job.d/a.conf:2: param ENV has no default"));
}

type Env = Vec<(String, String)>;

#[test]
fn resolving_a_manual_runs_values() {
    let (p, _, _) = read("param = ENV\nparam = TAG=latest\n", false);
    // (given, result: env or the error's text)
    let table: Vec<(Env, Result<Env, &str>)> = vec![
        (
            given(&[("ENV", "prod")]),
            Ok(given(&[
                ("KARAJO_PARAM_ENV", "prod"),
                ("KARAJO_PARAM_TAG", "latest"),
            ])),
        ),
        (
            given(&[("tag", "v1"), ("env", "a b; rm -rf /")]),
            Ok(given(&[
                ("KARAJO_PARAM_ENV", "a b; rm -rf /"),
                ("KARAJO_PARAM_TAG", "v1"),
            ])),
        ),
        (
            given(&[("ENV", "")]),
            Ok(given(&[
                ("KARAJO_PARAM_ENV", ""),
                ("KARAJO_PARAM_TAG", "latest"),
            ])),
        ),
        (
            given(&[]),
            Err("missing parameter: ENV (declared without a default)"),
        ),
        (
            given(&[("ENV", "x"), ("HOST", "h"), ("port", "1")]),
            Err("undeclared parameters: HOST, port; the job declares ENV, TAG"),
        ),
        (
            given(&[("ENV", "x"), ("env", "y")]),
            Err("parameter ENV is given twice"),
        ),
        (
            given(&[("ENV", "a\0b")]),
            Err("the value of parameter ENV holds a NUL byte"),
        ),
    ];
    for (input, want) in table {
        let got = p.resolve(&input).map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_string), "{input:?}");
    }
    let long = "x".repeat(PARAM_VALUE_MAX + 1);
    assert_eq!(
        p.resolve(&given(&[("ENV", &long)])).unwrap_err(),
        ParamError::TooLong("ENV".into())
    );
    let none = Params::default();
    assert_eq!(
        none.resolve(&given(&[("X", "1")])).unwrap_err().to_string(),
        "undeclared parameter: X; the job declares none"
    );
    assert_eq!(none.resolve(&[]).unwrap(), Vec::new());
}
