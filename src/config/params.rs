//! A command job's declared run parameters (issue 15, item 7): the repeatable key
//! `param = NAME` (required) or `param = NAME=default`, one per line (a default may
//! hold commas), read and checked with errors by file and line; and the check of the
//! values a manual run gives ([`Params::resolve`]): undeclared names, required names
//! left out, a NUL or an over-long value are refused, naming the parameters. Values
//! become the run's `KARAJO_PARAM_<NAME>` environment variables, never part of a
//! command line. Pure: the API, the CLI and the web UI carry the values here, the run
//! puts them in its environment.

use super::fields::{Fields, Problems};

/// The keys a command job section may hold for its parameters.
pub(crate) const PARAM_KEYS: &[&str] = &["param"];

/// The prefix of a parameter's environment variable.
pub const PARAM_ENV_PREFIX: &str = "KARAJO_PARAM_";

/// The longest value a parameter takes, in bytes.
pub const PARAM_VALUE_MAX: usize = 4096;

/// The longest parameter name.
pub const PARAM_NAME_MAX: usize = 64;

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name, upper-cased (names are case-insensitive).
    pub name: String,
    /// The value a run that does not give one gets; `None`: required.
    pub default: Option<String>,
}

impl Param {
    /// `KARAJO_PARAM_<NAME>`.
    pub fn env_name(&self) -> String {
        format!("{PARAM_ENV_PREFIX}{}", self.name)
    }
}

/// A job's declared parameters, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// The parameters.
    pub list: Vec<Param>,
}

/// Why a manual run's parameters were refused (a `400` naming them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// Names the job does not declare.
    #[error("undeclared parameter{}: {}{}", plural(.names), .names.join(", "), declared_list(.declared))]
    Undeclared {
        /// The names given, as given.
        names: Vec<String>,
        /// What the job declares.
        declared: Vec<String>,
    },
    /// Required parameters not given.
    #[error("missing parameter{}: {} (declared without a default)", plural(.0), .0.join(", "))]
    Missing(Vec<String>),
    /// A name given twice.
    #[error("parameter {0} is given twice")]
    Twice(String),
    /// A value with a NUL byte, which no environment variable can hold.
    #[error("the value of parameter {0} holds a NUL byte")]
    Nul(String),
    /// A value longer than [`PARAM_VALUE_MAX`].
    #[error("the value of parameter {0} is longer than {PARAM_VALUE_MAX} bytes")]
    TooLong(String),
}

fn plural(list: &[String]) -> &'static str {
    if list.len() == 1 { "" } else { "s" }
}

fn declared_list(list: &[String]) -> String {
    match list {
        [] => "; the job declares none".to_string(),
        list => format!("; the job declares {}", list.join(", ")),
    }
}

impl Params {
    /// Whether the job declares none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The declared parameter `name` (any case).
    pub fn get(&self, name: &str) -> Option<&Param> {
        self.list.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Checks the values a manual run gives (names in any case) and answers the run's
    /// environment: each declared parameter's variable with the value given, else its
    /// default; a required one must be given. Every undeclared name is reported at
    /// once, then every missing one.
    pub fn resolve(&self, given: &[(String, String)]) -> Result<Vec<(String, String)>, ParamError> {
        let undeclared: Vec<String> = given
            .iter()
            .filter(|(name, _)| self.get(name).is_none())
            .map(|(name, _)| name.clone())
            .collect();
        if !undeclared.is_empty() {
            return Err(ParamError::Undeclared {
                names: undeclared,
                declared: self.list.iter().map(|p| p.name.clone()).collect(),
            });
        }
        for (i, (name, value)) in given.iter().enumerate() {
            let upper = name.to_ascii_uppercase();
            if given[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(ParamError::Twice(upper));
            }
            if value.contains('\0') {
                return Err(ParamError::Nul(upper));
            }
            if value.len() > PARAM_VALUE_MAX {
                return Err(ParamError::TooLong(upper));
            }
        }
        let mut env = Vec::with_capacity(self.list.len());
        let mut missing = Vec::new();
        for param in &self.list {
            let value = given
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&param.name))
                .map(|(_, value)| value.clone())
                .or_else(|| param.default.clone());
            match value {
                Some(value) => env.push((param.env_name(), value)),
                None => missing.push(param.name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(ParamError::Missing(missing));
        }
        Ok(env)
    }

    /// The environment of a run nobody gave values to (a timer, a GitHub or SourceHut
    /// delivery): each parameter's default; required ones stay unset.
    pub fn defaults(&self) -> Vec<(String, String)> {
        self.list
            .iter()
            .filter_map(|p| p.default.clone().map(|d| (p.env_name(), d)))
            .collect()
    }

    /// The parameters in words for `karajo check` and the job page (`None` without
    /// any): `params: ENV (required), TAG=latest`.
    pub fn describe(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let items: Vec<String> = self
            .list
            .iter()
            .map(|p| match &p.default {
                Some(d) => format!("{}={d}", p.name),
                None => format!("{} (required)", p.name),
            })
            .collect();
        Some(format!("params: {}", items.join(", ")))
    }
}

/// Whether `name` is a parameter name: a letter or `_`, then letters, digits and `_`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= PARAM_NAME_MAX
}

/// Reads every `param` line of a command job. `timer` says whether the job runs on a
/// schedule or interval: a required parameter of such a job is warned about, since a
/// timer run cannot give it.
pub(crate) fn read_params(f: &Fields, timer: bool, problems: &mut Problems) -> Params {
    let mut params = Params::default();
    for var in f.all("param") {
        let (name, default) = match var.value.split_once('=') {
            Some((name, default)) => (name.trim(), Some(default.trim().to_string())),
            None => (var.value.trim(), None),
        };
        if !valid_name(name) {
            problems.error(
                &f.file,
                var.line,
                format!(
                    "param = {:?}: a parameter is NAME or NAME=default, one per line, where NAME \
                     is a letter or _ then letters, digits and _ (at most {PARAM_NAME_MAX})",
                    var.value
                ),
            );
            continue;
        }
        if default.as_ref().is_some_and(|d| d.len() > PARAM_VALUE_MAX) {
            problems.error(
                &f.file,
                var.line,
                format!("param {name}: the default is longer than {PARAM_VALUE_MAX} bytes"),
            );
            continue;
        }
        if params.get(name).is_some() {
            problems.error(
                &f.file,
                var.line,
                format!("param {name} is declared twice (names are case-insensitive)"),
            );
            continue;
        }
        if timer && default.is_none() {
            problems.warn(
                &f.file,
                var.line,
                format!(
                    "param {name} has no default, so the job's timer runs leave \
                     {PARAM_ENV_PREFIX}{} unset; give one with param = {name}=VALUE",
                    name.to_ascii_uppercase()
                ),
            );
        }
        params.list.push(Param {
            name: name.to_ascii_uppercase(),
            default,
        });
    }
    params
}

#[cfg(test)]
mod tests;
