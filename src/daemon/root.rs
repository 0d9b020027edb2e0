//! The start-up warning about running as root: karajo (Go)'s users often run it as
//! root, and refusing to would break them, so karajo only says which commands run as
//! root with it. Command jobs have no `user` key (they always run as karajo's user);
//! services have one, and those that leave it empty are named too. Pure: the caller
//! says whether the process is root.

use crate::config::{Config, JobKindSpec};

/// The warning to log when karajo runs as root, or `None` when it does not or when
/// nothing it runs would run as root.
pub(crate) fn root_warning(config: &Config, is_root: bool) -> Option<String> {
    if !is_root {
        return None;
    }
    let jobs: Vec<&str> = config
        .jobs
        .iter()
        .filter(|j| matches!(j.kind, JobKindSpec::Exec(_)))
        .map(|j| j.common.name.as_str())
        .collect();
    let services: Vec<&str> = config
        .services
        .iter()
        .filter(|s| s.user.trim().is_empty())
        .map(|s| s.name.as_str())
        .collect();
    let mut parts = Vec::new();
    if !jobs.is_empty() {
        parts.push(format!(
            "the commands of {} {} (command jobs have no user key)",
            if jobs.len() == 1 { "job" } else { "jobs" },
            quoted_list(&jobs)
        ));
    }
    if !services.is_empty() {
        parts.push(format!(
            "{} {} (no user set)",
            if services.len() == 1 {
                "service"
            } else {
                "services"
            },
            quoted_list(&services)
        ));
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "karajo runs as root, so {} run as root too; run karajo as its own user \
         (the Debian package's unit runs it as karajo), or set user = NAME on services",
        parts.join(" and ")
    ))
}

/// `"a", "b", "c"`, at most five names, then `and N more`.
fn quoted_list(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    let mut list: Vec<String> = names.iter().take(SHOWN).map(|n| format!("{n:?}")).collect();
    if names.len() > SHOWN {
        list.push(format!("and {} more", names.len() - SHOWN));
    }
    list.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("karajo.conf");
        std::fs::write(
            &file,
            format!(
                "[karajo]\ndir_base = {}\nsecret = s\n{text}",
                dir.path().display()
            ),
        )
        .unwrap();
        crate::config::load(&file).unwrap()
    }

    #[test]
    fn root_with_commands_is_warned_about_and_names_them() {
        let c = config(
            "[job \"a\"]\ncommand = true\n[job \"b\"]\ncommand = true\n\
             [job.http \"h\"]\nhttp_url = http://127.0.0.1:1/\n\
             [service \"web\"]\ncommand = exec sleep 1\n\
             [service \"db\"]\ncommand = exec sleep 1\nuser = postgres\n",
        );
        assert_eq!(root_warning(&c, false), None);
        assert_eq!(
            root_warning(&c, true).unwrap(),
            "karajo runs as root, so the commands of jobs \"a\", \"b\" (command jobs have \
             no user key) and service \"web\" (no user set) run as root too; run karajo as \
             its own user (the Debian package's unit runs it as karajo), or set user = NAME \
             on services"
        );
    }

    #[test]
    fn nothing_to_run_means_no_warning() {
        let c = config("[job.http \"h\"]\nhttp_url = http://127.0.0.1:1/\n");
        assert_eq!(root_warning(&c, true), None);
        assert_eq!(
            quoted_list(&["1", "2", "3", "4", "5", "6", "7"]),
            "\"1\", \"2\", \"3\", \"4\", \"5\", and 2 more"
        );
    }
}
