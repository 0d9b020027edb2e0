//! The dashboard's live part, in two views: **cards** (one card per job or heartbeat
//! monitor with a chart of its recent runs or check-ins, and one per supervised service
//! with its pid, uptime or next start and last exit) and a compact **list** (one table
//! row per entry). Both open with the count of entries per [`Group`]; the page's
//! script filters the entries by group and by a search on the client, so the server
//! renders every entry.
//!
//! An entry is rendered on its own ([`Part`]), keyed by `<kind>/<id>`, so that a live
//! stream that already sent a rendering sends only the parts that changed since (a
//! `patch`) and a whole new live part (an `update`) only when the set of entries
//! changed. A page remembers what it was rendered with in a [`RenderCache`] under a
//! token; its stream starts from there instead of sending the whole part again.
//!
//! The list's rows are built from [`ListRow`], which says nothing job-specific: another
//! kind of entry (a heartbeat monitor, a service) joins the list by making rows of its
//! own and adding them to [`Entries`]; its status maps to a [`Group`] for the counts and
//! filters.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hasher as _};
use std::sync::{Arc, Mutex};

use askama::Template as _;
use jiff::Timestamp;

use super::service::ServiceCard;
use super::view::{EntryCard, Group, ListRow, ViewSource};
use super::{monitor, service};
use crate::job::JobKind;
use crate::scheduler::Snapshot;

/// More entries than this, and the dashboard opens as a list unless the reader chose.
pub(super) const CARDS_UP_TO: usize = 50;

/// Page renderings remembered for their streams.
const CACHED_RENDERS: usize = 32;

/// How the dashboard shows its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DashView {
    /// One card per job, with a chart of its recent runs.
    Cards,
    /// One table row per entry.
    List,
}

impl DashView {
    /// The word in `?view=`, in `data-view` and in the reader's stored choice.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Cards => "cards",
            Self::List => "list",
        }
    }

    /// The view named by `word`; `None` for anything else (the empty word included).
    pub(super) fn parse(word: &str) -> Option<Self> {
        [Self::Cards, Self::List]
            .into_iter()
            .find(|v| v.as_str() == word)
    }

    /// The view of a dashboard with `entries` entries when the reader did not choose:
    /// cards up to [`CARDS_UP_TO`], else the list.
    pub(super) fn default_for(entries: usize) -> Self {
        if entries > CARDS_UP_TO {
            Self::List
        } else {
            Self::Cards
        }
    }

    /// The view named by `word`, else the default for `entries`.
    pub(super) fn chosen(word: &str, entries: usize) -> Self {
        Self::parse(word).unwrap_or_else(|| Self::default_for(entries))
    }
}

/// How many entries are in each group, for the line at the top and the filter buttons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Counts {
    /// Entries in all.
    pub total: usize,
    /// Entries per group, in [`Group::ALL`] order.
    by_group: [usize; Group::ALL.len()],
    /// Command job runs waiting for a `max_job_running` slot.
    pub waiting: usize,
}

impl Counts {
    /// Counts `groups`.
    pub(super) fn of(groups: impl IntoIterator<Item = Group>, waiting: usize) -> Self {
        let mut counts = Self {
            waiting,
            ..Self::default()
        };
        for group in groups {
            counts.total += 1;
            counts.by_group[group.index()] += 1;
        }
        counts
    }

    /// Entries in `group`.
    pub(super) fn get(&self, group: Group) -> usize {
        self.by_group[group.index()]
    }

    /// The groups that have entries, with their counts, in [`Group::ALL`] order.
    pub(super) fn present(&self) -> Vec<(Group, usize)> {
        Group::ALL
            .into_iter()
            .map(|g| (g, self.get(g)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// `{"all":100,"canceled":0,"failed":3,…}`, every group included, for the page's
    /// script.
    pub(super) fn json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("all".into(), self.total.into());
        for group in Group::ALL {
            map.insert(group.as_str().into(), self.get(group).into());
        }
        serde_json::Value::Object(map).to_string()
    }

    /// `job` or `jobs` for the total.
    pub(super) fn noun(&self) -> &'static str {
        if self.total == 1 { "job" } else { "jobs" }
    }
}

/// A filter button of the dashboard's toolbar.
#[derive(Debug, Clone)]
pub(super) struct Filter {
    /// The group's word (`data-filter`).
    pub group: &'static str,
    /// The button's text.
    pub title: &'static str,
    /// Entries in the group when the page was rendered.
    pub count: usize,
    /// Shown only while the group has entries (or while it is the filter in force).
    pub optional: bool,
}

impl Filter {
    /// The buttons for `counts`, after the page's own "All".
    pub(super) fn all(counts: &Counts) -> Vec<Self> {
        Group::ALL
            .into_iter()
            .map(|g| Self {
                group: g.as_str(),
                title: g.title(),
                count: counts.get(g),
                optional: !g.always_offered(),
            })
            .collect()
    }
}

/// Everything on the dashboard, before rendering.
#[derive(Debug, Clone)]
pub(super) struct Entries {
    /// The counts at the top.
    pub counts: Counts,
    /// The entries as the chosen view shows them.
    pub body: EntriesBody,
}

/// The entries of one view.
#[derive(Debug, Clone)]
pub(super) enum EntriesBody {
    /// Cards, command jobs, then HTTP jobs, each by name, then heartbeat monitors,
    /// then services, each by id.
    Cards {
        /// Command jobs.
        exec: Vec<EntryCard>,
        /// HTTP jobs.
        http: Vec<EntryCard>,
        /// Heartbeat monitors.
        monitors: Vec<EntryCard>,
        /// Supervised services.
        services: Vec<ServiceCard>,
    },
    /// Rows: command jobs, then HTTP jobs, each by name. Other kinds of entries
    /// (monitors, then services) add their rows after these.
    List(Vec<ListRow>),
}

impl Entries {
    /// How many entries `snapshot` has: jobs, monitors and services (the default view
    /// depends on it).
    pub(super) fn count(snapshot: &Snapshot) -> usize {
        snapshot.jobs.len() + snapshot.monitors.len() + snapshot.services.len()
    }

    /// The entries of `snapshot` at `now` as `view` shows them (blocking: reads run
    /// times).
    pub(super) fn build(
        src: &ViewSource,
        snapshot: &Snapshot,
        now: Timestamp,
        view: DashView,
    ) -> Self {
        let counts = Counts::of(
            snapshot
                .jobs
                .iter()
                .map(|j| Group::of_job(j))
                .chain(
                    snapshot
                        .monitors
                        .iter()
                        .map(|m| Group::of_monitor(m.state.status)),
                )
                .chain(
                    snapshot
                        .services
                        .iter()
                        .map(|s| service::group(s.state.status)),
                ),
            snapshot.waiting,
        );
        let body = match view {
            DashView::Cards => EntriesBody::Cards {
                exec: snapshot
                    .jobs_of(JobKind::Exec)
                    .map(|v| src.card(v, now))
                    .collect(),
                http: snapshot
                    .jobs_of(JobKind::Http)
                    .map(|v| src.card(v, now))
                    .collect(),
                monitors: snapshot
                    .monitors
                    .iter()
                    .map(|m| monitor::card(m, now))
                    .collect(),
                services: snapshot
                    .services
                    .iter()
                    .map(|s| service::card(s, now))
                    .collect(),
            },
            DashView::List => {
                let mut rows: Vec<ListRow> =
                    snapshot.jobs.iter().map(|v| src.row(v, now)).collect();
                rows.extend(snapshot.monitors.iter().map(|m| monitor::row(m, now)));
                rows.extend(snapshot.services.iter().map(|s| service::row(s, now)));
                EntriesBody::List(rows)
            }
        };
        Self { counts, body }
    }

    /// Renders every part.
    pub(super) fn render(&self) -> Result<Rendered, askama::Error> {
        let head = Part::new(
            "head",
            HeadTemplate {
                counts: &self.counts,
            }
            .render()?,
        );
        let body = match &self.body {
            EntriesBody::Cards {
                exec,
                http,
                monitors,
                services,
            } => {
                let cards = |cards: &[EntryCard]| -> Result<Vec<Part>, askama::Error> {
                    cards
                        .iter()
                        .map(|card| {
                            Ok(Part::new(card.key.clone(), CardTemplate { card }.render()?))
                        })
                        .collect()
                };
                RenderedBody::Cards {
                    exec: cards(exec)?,
                    http: cards(http)?,
                    monitors: cards(monitors)?,
                    services: services
                        .iter()
                        .map(|card| {
                            Ok(Part::new(
                                card.key.clone(),
                                ServiceCardTemplate { card }.render()?,
                            ))
                        })
                        .collect::<Result<_, askama::Error>>()?,
                }
            }
            EntriesBody::List(rows) => RenderedBody::List(
                rows.iter()
                    .map(|row| Ok(Part::new(row.key.clone(), RowTemplate { row }.render()?)))
                    .collect::<Result<_, askama::Error>>()?,
            ),
        };
        Ok(Rendered { head, body })
    }
}

/// The counts line (`_head.html`), the first part of both views.
#[derive(askama::Template)]
#[template(path = "_head.html")]
struct HeadTemplate<'a> {
    counts: &'a Counts,
}

/// One card (`_card.html`).
#[derive(askama::Template)]
#[template(path = "_card.html")]
struct CardTemplate<'a> {
    card: &'a EntryCard,
}

/// One service's card (`_service_card.html`).
#[derive(askama::Template)]
#[template(path = "_service_card.html")]
struct ServiceCardTemplate<'a> {
    card: &'a ServiceCard,
}

/// One row of the list (`_row.html`).
#[derive(askama::Template)]
#[template(path = "_row.html")]
struct RowTemplate<'a> {
    row: &'a ListRow,
}

/// The cards view (`_jobs.html`) around its rendered parts.
#[derive(askama::Template)]
#[template(path = "_jobs.html")]
struct CardsTemplate<'a> {
    head: &'a Part,
    exec: &'a [Part],
    http: &'a [Part],
    monitors: &'a [Part],
    services: &'a [Part],
}

/// The list view (`_list.html`) around its rendered parts.
#[derive(askama::Template)]
#[template(path = "_list.html")]
struct ListTemplate<'a> {
    head: &'a Part,
    rows: &'a [Part],
}

/// One rendered piece of the live part: the counts line or an entry.
#[derive(Debug, Clone)]
pub(super) struct Part {
    /// `head`, or the entry's `<kind>/<id>` (its `data-key`).
    pub key: String,
    /// Its HTML, escaped by its template.
    pub html: String,
    /// A hash of `html`.
    hash: u64,
}

impl Part {
    fn new(key: impl Into<String>, html: String) -> Self {
        let mut hasher = DefaultHasher::new();
        hasher.write(html.as_bytes());
        Self {
            key: key.into(),
            hash: hasher.finish(),
            html,
        }
    }
}

/// The rendered live part of one view.
#[derive(Debug, Clone)]
pub(super) struct Rendered {
    head: Part,
    body: RenderedBody,
}

#[derive(Debug, Clone)]
enum RenderedBody {
    Cards {
        exec: Vec<Part>,
        http: Vec<Part>,
        monitors: Vec<Part>,
        services: Vec<Part>,
    },
    List(Vec<Part>),
}

impl Rendered {
    /// The entries' parts, in page order.
    fn entries(&self) -> impl Iterator<Item = &Part> {
        let (a, b, c, d): (&[Part], &[Part], &[Part], &[Part]) = match &self.body {
            RenderedBody::Cards {
                exec,
                http,
                monitors,
                services,
            } => (exec, http, monitors, services),
            RenderedBody::List(rows) => (rows, &[], &[], &[]),
        };
        a.iter().chain(b).chain(c).chain(d)
    }

    fn view(&self) -> DashView {
        match self.body {
            RenderedBody::Cards { .. } => DashView::Cards,
            RenderedBody::List(_) => DashView::List,
        }
    }

    /// The whole live part.
    pub(super) fn html(&self) -> Result<String, askama::Error> {
        match &self.body {
            RenderedBody::Cards {
                exec,
                http,
                monitors,
                services,
            } => CardsTemplate {
                head: &self.head,
                exec,
                http,
                monitors,
                services,
            }
            .render(),
            RenderedBody::List(rows) => ListTemplate {
                head: &self.head,
                rows,
            }
            .render(),
        }
    }

    /// What a page or stream that has this rendering shows.
    pub(super) fn digest(&self) -> Digest {
        Digest {
            view: self.view(),
            head: self.head.hash,
            entries: self.entries().map(|p| (p.key.clone(), p.hash)).collect(),
        }
    }

    /// The parts that differ from what `shown` shows, as the `patch` event's JSON
    /// (`{"head":"<html>"|null,"items":[["<key>","<html>"],…]}`); `None` when the view or
    /// the set or order of entries differ, so only a whole update will do.
    pub(super) fn patch(&self, shown: &Digest) -> Option<Patch> {
        if shown.view != self.view() || shown.entries.len() != self.entries().count() {
            return None;
        }
        let mut items = Vec::new();
        for (part, (key, hash)) in self.entries().zip(&shown.entries) {
            if part.key != *key {
                return None;
            }
            if part.hash != *hash {
                items.push((part.key.as_str(), part.html.as_str()));
            }
        }
        let head = (self.head.hash != shown.head).then_some(self.head.html.as_str());
        let empty = head.is_none() && items.is_empty();
        let json = serde_json::json!({ "head": head, "items": items }).to_string();
        Some(Patch { json, empty })
    }
}

/// A `patch` event's data.
#[derive(Debug, Clone)]
pub(super) struct Patch {
    /// The JSON.
    pub json: String,
    /// Nothing changed.
    pub empty: bool,
}

/// What a rendering shows, without its HTML: the view, and each part's key and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Digest {
    view: DashView,
    head: u64,
    entries: Vec<(String, u64)>,
}

impl Digest {
    /// A token naming this digest: 16 hex digits.
    pub(super) fn token(&self) -> String {
        let mut hasher = DefaultHasher::new();
        hasher.write(self.view.as_str().as_bytes());
        hasher.write_u64(self.head);
        for (key, hash) in &self.entries {
            hasher.write(key.as_bytes());
            hasher.write_u64(*hash);
        }
        format!("{:016x}", hasher.finish())
    }
}

/// The digests of the last few dashboard pages rendered, by token: a page's live stream
/// names its page's token (`?have=`) and starts from that page's content. A token is
/// taken once; a stream that reconnects with it (its page may have changed since) gets
/// the whole live part.
#[derive(Debug, Default)]
pub(crate) struct RenderCache {
    recent: Mutex<VecDeque<(String, Arc<Digest>)>>,
}

impl RenderCache {
    /// Remembers `digest`; its token.
    pub(super) fn put(&self, digest: Digest) -> String {
        let token = digest.token();
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|(t, _)| *t != token);
        if recent.len() >= CACHED_RENDERS {
            recent.pop_front();
        }
        recent.push_back((token.clone(), Arc::new(digest)));
        token
    }

    /// The digest named by `token`, forgotten here.
    pub(super) fn take(&self, token: &str) -> Option<Arc<Digest>> {
        if token.is_empty() {
            return None;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let at = recent.iter().position(|(t, _)| t == token)?;
        recent.remove(at).map(|(_, d)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::pages::view::TimeView;

    fn row(id: &str, status: &'static str, group: Group) -> ListRow {
        ListRow {
            key: format!("job/{id}"),
            kind: "command",
            name: id.to_string(),
            href: format!("/karajo/app/job/{id}"),
            status,
            group,
            queued: false,
            last: TimeView::new("2026-11-22T21:08:11Z".parse().unwrap()),
            last_href: Some(format!("/karajo/app/job/{id}/log/1")),
            next: None,
            next_note: "on request",
            duration: "3 s".into(),
            elapsed_secs: None,
            elapsed_prefix: "",
            elapsed_suffix: " so far",
        }
    }

    fn list(rows: Vec<ListRow>) -> Rendered {
        Entries {
            counts: Counts::of(rows.iter().map(|r| r.group), 0),
            body: EntriesBody::List(rows),
        }
        .render()
        .unwrap()
    }

    #[test]
    fn views_by_word_else_by_size() {
        assert_eq!(DashView::chosen("", 0), DashView::Cards);
        assert_eq!(DashView::chosen("", CARDS_UP_TO), DashView::Cards);
        assert_eq!(DashView::chosen("", CARDS_UP_TO + 1), DashView::List);
        assert_eq!(DashView::chosen("cards", 1000), DashView::Cards);
        assert_eq!(DashView::chosen("list", 1), DashView::List);
        assert_eq!(DashView::chosen("LIST", 1), DashView::Cards);
        for view in [DashView::Cards, DashView::List] {
            assert_eq!(DashView::parse(view.as_str()), Some(view));
        }
    }

    #[test]
    fn counts_say_what_needs_attention_first() {
        let counts = Counts::of(
            [
                Group::Ok,
                Group::Failed,
                Group::Ok,
                Group::New,
                Group::Running,
            ],
            2,
        );
        assert_eq!(counts.total, 5);
        assert_eq!(
            counts.present(),
            [
                (Group::Failed, 1),
                (Group::Running, 1),
                (Group::Ok, 2),
                (Group::New, 1)
            ]
        );
        assert_eq!(
            counts.json(),
            r#"{"all":5,"backoff":0,"canceled":0,"failed":1,"late":0,"new":1,"ok":2,"paused":0,"running":1}"#
        );
        let head = HeadTemplate { counts: &counts }.render().unwrap();
        assert!(
            head.ends_with("><strong>5 jobs</strong> · <span class=\"c st-failed\">1 failed</span> · <span class=\"c st-running\">1 running</span> · <span class=\"c st-success\">2 ok</span> · <span class=\"c st-new\">1 never run</span> · 2 waiting for a slot</p>"),
            "{head}"
        );
        assert_eq!(Counts::of([Group::Ok], 0).noun(), "job");
        let filters = Filter::all(&counts);
        assert_eq!(filters.len(), Group::ALL.len());
        assert!(filters.iter().any(|f| f.group == "late" && f.optional));
        assert!(filters.iter().any(|f| f.group == "backoff" && f.optional));
        assert!(filters.iter().any(|f| f.group == "failed" && !f.optional));
    }

    #[test]
    fn a_patch_carries_only_what_changed() {
        let before = list(vec![
            row("a", "success", Group::Ok),
            row("b", "success", Group::Ok),
        ]);
        let shown = before.digest();
        // Nothing changed: an empty patch.
        let same = before.patch(&shown).unwrap();
        assert!(same.empty);
        assert_eq!(same.json, r#"{"head":null,"items":[]}"#);
        // One row changed, and with it the counts.
        let after = list(vec![
            row("a", "success", Group::Ok),
            row("b", "failed", Group::Failed),
        ]);
        let patch = after.patch(&shown).unwrap();
        assert!(!patch.empty);
        let json: serde_json::Value = serde_json::from_str(&patch.json).unwrap();
        assert!(json["head"].as_str().unwrap().contains("1 failed"));
        let items = json["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0][0], "job/b");
        assert!(
            items[0][1]
                .as_str()
                .unwrap()
                .starts_with("<tr data-key=\"job/b\" data-group=\"failed\">")
        );
        // Another set or order of entries, or another view: only a whole update will do.
        let fewer = list(vec![row("a", "success", Group::Ok)]);
        assert!(fewer.patch(&shown).is_none());
        let swapped = list(vec![
            row("b", "success", Group::Ok),
            row("a", "success", Group::Ok),
        ]);
        assert!(swapped.patch(&shown).is_none());
        let cards = Entries {
            counts: Counts::default(),
            body: EntriesBody::Cards {
                exec: Vec::new(),
                http: Vec::new(),
                monitors: Vec::new(),
                services: Vec::new(),
            },
        }
        .render()
        .unwrap();
        assert!(cards.patch(&shown).is_none());
        assert!(cards.html().unwrap().contains("No command jobs."));
    }

    #[test]
    fn names_are_text_in_rows_and_patches() {
        let mut evil = row("evil", "new", Group::New);
        evil.name = "<img src=x onerror=alert(1)>\"&".into();
        let rendered = list(vec![evil]);
        let html = rendered.html().unwrap();
        assert!(
            html.contains("&#60;img src=x onerror=alert(1)&#62;&#34;&#38;"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
        let empty = list(Vec::new());
        let patch = rendered.patch(&empty.digest());
        assert!(patch.is_none(), "another set of entries");
        let changed = {
            let mut r = row("evil", "failed", Group::Failed);
            r.name = "<img src=x onerror=alert(1)>".into();
            list(vec![r])
        };
        let patch = changed.patch(&rendered.digest()).unwrap();
        assert!(!patch.json.contains("<img"), "{}", patch.json);
    }

    #[test]
    fn the_cache_hands_a_page_token_out_once() {
        let cache = RenderCache::default();
        let digest = list(vec![row("a", "success", Group::Ok)]).digest();
        let token = cache.put(digest.clone());
        assert_eq!(token.len(), 16);
        assert_eq!(
            cache.put(digest.clone()),
            token,
            "the same content, the same token"
        );
        assert_eq!(cache.take(&token).as_deref(), Some(&digest));
        assert!(cache.take(&token).is_none(), "taken once");
        assert!(cache.take("").is_none());
        // The oldest renderings go first.
        let tokens: Vec<String> = (0..=CACHED_RENDERS)
            .map(|i| cache.put(list(vec![row(&format!("j{i}"), "new", Group::New)]).digest()))
            .collect();
        assert!(cache.take(&tokens[0]).is_none());
        assert!(cache.take(&tokens[CACHED_RENDERS]).is_some());
    }
}
