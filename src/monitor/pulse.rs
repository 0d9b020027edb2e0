//! watchTower pulses (monitors spec A.8), the pure part: what a pulse asks for
//! ([`Pulse`], also the record `state/watchtower.json` keeps of each dynamic monitor)
//! and the monitor it makes ([`pulse_spec`]): a period of `nextIn` seconds, `grace`
//! and `log_retention` from `[watchtower]`, and the notifs its `alertType` names, with
//! its `alertTarget` only where those notifs' `allow_target` rule accepts it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::NextIn;
use crate::config::{
    Cadence, MonitorAuth, MonitorOrigin, MonitorRules, MonitorSpec, NotifConfig, WatchtowerConfig,
};
use crate::job::JobId;

/// What a pulse sets up: one dynamic monitor's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pulse {
    /// `service`, as sent: the monitor's name (its id is the name normalised).
    pub service: String,
    /// `alertType`: the name of a `[notif]` section, compared without regard to case.
    #[serde(default)]
    pub alert_type: String,
    /// `alertTarget`: a recipient that replaces the notif's own, where allowed.
    #[serde(default)]
    pub alert_target: String,
    /// `nextIn`: the seconds until the next pulse is due.
    pub next_in: NextIn,
}

impl Pulse {
    /// The monitor's id.
    pub fn id(&self) -> JobId {
        JobId::from_name(&self.service)
    }
}

/// A pulse's monitor, and what was wrong with its alert settings.
#[derive(Debug, Clone)]
pub struct PulseSpec {
    /// The monitor.
    pub spec: MonitorSpec,
    /// `alertType` named no `[notif]` section, so `[watchtower] notif_on_down/up` are
    /// used instead.
    pub unknown_alert_type: bool,
    /// Why `alertTarget` is ignored, when it is.
    pub ignored_target: Option<String>,
}

/// The monitor a pulse makes, under `watchtower` (its defaults when `None`: the
/// section was removed while its monitors live on) and the configured `notifs`.
pub fn pulse_spec(
    pulse: &Pulse,
    watchtower: Option<&WatchtowerConfig>,
    notifs: &[NotifConfig],
) -> PulseSpec {
    let alert_type = pulse.alert_type.trim();
    let named = (!alert_type.is_empty())
        .then(|| {
            notifs
                .iter()
                .find(|n| n.name.eq_ignore_ascii_case(alert_type))
        })
        .flatten();
    let (notif_on_down, notif_on_up) = match named {
        Some(notif) => (vec![notif.name.clone()], vec![notif.name.clone()]),
        None => watchtower.map_or_else(Default::default, |wt| {
            (wt.notif_on_down.clone(), wt.notif_on_up.clone())
        }),
    };
    let target = pulse.alert_target.trim();
    let (alert_target, ignored_target) = if target.is_empty() {
        (None, None)
    } else {
        let refusals: Vec<String> = notif_on_down
            .iter()
            .chain(&notif_on_up)
            .filter_map(|name| notifs.iter().find(|n| &n.name == name))
            .filter_map(|notif| notif.with_target(target).err())
            .map(|err| err.to_string())
            .collect();
        match refusals.first() {
            None if notif_on_down.is_empty() && notif_on_up.is_empty() => (
                None,
                Some("no notification is configured for it".to_string()),
            ),
            None => (Some(target.to_string()), None),
            Some(why) => (None, Some(why.clone())),
        }
    };
    let id = pulse.id();
    let spec = MonitorSpec {
        name: pulse.service.clone(),
        path: String::new(),
        file: watchtower.map_or_else(PathBuf::new, |wt| wt.file.clone()),
        line: watchtower.map_or(0, |wt| wt.line),
        description: String::new(),
        auth: MonitorAuth::None,
        post_only: false,
        ping_body_limit: 0,
        log_retention: watchtower
            .map_or(crate::config::model::DEFAULT_MONITOR_LOG_RETENTION, |wt| {
                wt.log_retention
            }),
        manual_resume: false,
        accept_pulse: true,
        rules: MonitorRules {
            cadence: Cadence::Period(pulse.next_in.duration()),
            grace: watchtower.map_or(Duration::ZERO, |wt| wt.grace),
            max_runtime: None,
            log_success: true,
            notif_on_down,
            notif_on_up,
            notif_on_late: Vec::new(),
            notif_repeat: None,
        },
        origin: MonitorOrigin::Pulse { alert_target },
        id,
    };
    PulseSpec {
        spec,
        unknown_alert_type: !alert_type.is_empty() && named.is_none(),
        ignored_target,
    }
}
