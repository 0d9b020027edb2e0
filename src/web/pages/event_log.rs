//! The event log's page, `GET /karajo/app/events`: the events of
//! [`crate::store::EventLog`] newest first, in a table (time, level in words and
//! colour, service, message, where it came from), narrowed by a GET form with the
//! filters of the event API (`service`, `from`, `to`, `level`, `message`; see
//! [`EventQuery::parse`]) and paged backwards with `before=<id>` (the "Older events"
//! link carries the filters on). A service that is a monitor's or a supervised
//! service's id links to its page (a service's own events to the service's page). The page is not live: it shows the log as it was when loaded, and
//! a reload (or the "Newest events" link) shows what came since. It reads the log
//! through [`crate::store::EventLog::query`] and writes nothing.

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::view::TimeView;
use super::{Chrome, Viewer, WuiError, html, monitor, service};
use crate::store::event_log::{EventQuery, EventRecord, Level, Source};
use crate::web::AppState;

/// The route of the page.
pub(super) const PATH: &str = "/karajo/app/events";

/// The filter names the form and the links carry, in the form's order.
const FILTERS: [&str; 5] = ["service", "from", "to", "level", "message"];

/// One event in the table.
#[derive(Debug, Clone)]
pub(super) struct EventRow {
    /// Its id (`data-id`).
    pub id: String,
    /// When it was recorded.
    pub time: Option<TimeView>,
    /// Its level name, also its colour (`lv-<level>`).
    pub level: &'static str,
    /// Its severity, 0–100.
    pub severity: u8,
    /// The service, as recorded.
    pub service: String,
    /// The page of the monitor or service whose id the service is.
    pub service_href: Option<String>,
    /// The message, as recorded (escaped by the template).
    pub message: String,
    /// `monitor`, `api`, … and the kind when karajo wrote it (`monitor · monitor.down`).
    pub origin: String,
}

impl EventRow {
    fn new(record: EventRecord, page_href: impl Fn(&EventRecord) -> Option<String>) -> Self {
        let origin = match &record.kind {
            Some(kind) => format!("{} · {kind}", record.source),
            None => record.source.as_str().to_string(),
        };
        Self {
            id: record.id.to_string(),
            time: TimeView::new(record.time),
            level: record.level.as_str(),
            severity: record.severity,
            service_href: page_href(&record),
            service: record.service,
            message: record.message,
            origin,
        }
    }
}

/// A filter of the form, with the value it shows.
#[derive(Debug, Clone)]
pub(super) struct FilterValue {
    /// The parameter name.
    pub name: &'static str,
    /// Its value in the request (empty when not set).
    pub value: String,
}

/// The page (`events.html`).
#[derive(askama::Template)]
#[template(path = "events.html")]
struct EventLogPage {
    chrome: Chrome,
    /// `service`, `from`, `to`, `level`, `message` as the request gave them.
    service: String,
    from: String,
    to: String,
    message: String,
    /// A `level` given as something other than a level's name (a severity, an
    /// alias), kept as a choice of its own.
    custom_level: Option<String>,
    /// The level choices: name and whether chosen.
    levels: Vec<(&'static str, bool)>,
    /// Monitor ids, offered for the service filter.
    services: Vec<String>,
    /// The events, newest first.
    events: Vec<EventRow>,
    /// Why the filters could not be used.
    error: Option<String>,
    /// The event log is not kept (no event log in this daemon).
    off: bool,
    /// Whether some filter is set.
    filtered: bool,
    /// This is an older page (`before` was given).
    paged: bool,
    /// The newest page with the same filters.
    newest_href: String,
    /// The next (older) page, when there is one.
    older_href: Option<String>,
}

/// A link to the page with `filters` (empty values left out) and `extra` pairs.
fn link(filters: &[FilterValue], extra: &[(&str, &str)]) -> String {
    let pairs: Vec<(&str, &str)> = filters
        .iter()
        .filter(|f| !f.value.is_empty())
        .map(|f| (f.name, f.value.as_str()))
        .chain(extra.iter().copied())
        .collect();
    if pairs.is_empty() {
        return PATH.to_string();
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!("{PATH}?{query}")
}

/// `GET /karajo/app/events[?service=&from=&to=&level=&message=&limit=&before=]`.
pub(super) async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WuiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let value_of = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let filters: Vec<FilterValue> = FILTERS
        .iter()
        .map(|name| FilterValue {
            name,
            value: value_of(name),
        })
        .collect();
    let limit = value_of("limit");
    let limit_pair: Vec<(&str, &str)> = if limit.is_empty() {
        Vec::new()
    } else {
        vec![("limit", limit.as_str())]
    };
    let snapshot = state.scheduler.snapshot();
    let monitor_href = |id: &str| {
        snapshot
            .monitor(id)
            .map(|m| monitor::page_href(m.id().as_str()))
    };
    let service_href = |id: &str| {
        snapshot
            .service(id)
            .map(|s| service::page_href(s.id().as_str()))
    };
    let page_href = |record: &EventRecord| {
        let id = record.service.as_str();
        if record.source == Source::Service {
            service_href(id).or_else(|| monitor_href(id))
        } else {
            monitor_href(id).or_else(|| service_href(id))
        }
    };
    let mut status = StatusCode::OK;
    let mut error = None;
    let mut events = Vec::new();
    let mut older_href = None;
    let off = state.events.is_none();
    match EventQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Err(err) => {
            status = StatusCode::BAD_REQUEST;
            error = Some(format!("The filter {err}"));
        }
        Ok(query) => {
            if let Some(log) = &state.events {
                let page = log.query(query).await?;
                older_href = page.next_before.map(|before| {
                    let before = before.to_string();
                    let mut extra = limit_pair.clone();
                    extra.push(("before", before.as_str()));
                    link(&filters, &extra)
                });
                events = page
                    .events
                    .into_iter()
                    .map(|r| EventRow::new(r, page_href))
                    .collect();
            }
        }
    }
    let value = |name: &str| {
        filters
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.clone())
            .unwrap_or_default()
    };
    let level = value("level");
    let chosen = Level::ALL.into_iter().find(|l| l.as_str() == level);
    let page = EventLogPage {
        chrome: Chrome::new(&state, Some(&viewer)),
        service: value("service"),
        from: value("from"),
        to: value("to"),
        message: value("message"),
        levels: Level::ALL
            .into_iter()
            .map(|l| (l.as_str(), chosen == Some(l)))
            .collect(),
        custom_level: (chosen.is_none() && !level.is_empty()).then_some(level),
        services: snapshot
            .monitors
            .iter()
            .map(|m| m.id().to_string())
            .collect(),
        events,
        error,
        off,
        filtered: filters.iter().any(|f| !f.value.is_empty()),
        paged: !value_of("before").is_empty(),
        newest_href: link(&filters, &limit_pair),
        older_href,
    };
    let mut response = html(&page)?;
    *response.status_mut() = status;
    Ok(response.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_the_set_filters_only() {
        let filters = vec![
            FilterValue {
                name: "service",
                value: "backup db".into(),
            },
            FilterValue {
                name: "level",
                value: String::new(),
            },
        ];
        assert_eq!(
            link(&filters, &[("before", "x&y")]),
            "/karajo/app/events?service=backup+db&before=x%26y"
        );
        assert_eq!(link(&[], &[]), PATH);
    }
}
