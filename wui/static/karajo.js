// karajo web UI: local times labelled with their zone, ticking elapsed times, live
// updates through Server-Sent Events, the live run log, the dashboard's views,
// search and status filters, and a service's controls without leaving its page.
// Pages work without it (they are server-rendered, times in UTC, controls are plain
// forms); this adds the viewer's time zone, the updates and the dashboard's tools.
"use strict";
(function () {
  var units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  function formatter(make) {
    try { return make(); } catch (e) { return null; }
  }
  var rtf = formatter(function () { return new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }); });
  var rtfShort = formatter(function () { return new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" }); }) || rtf;
  // Made once: a formatter is costly to make, and a dashboard has thousands of times.
  var fmtLocal = formatter(function () { return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" }); });
  var fmtClock = formatter(function () { return new Intl.DateTimeFormat(undefined, { timeStyle: "medium" }); });
  var fmtZone = formatter(function () { return new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }); });
  var yourZone = "";
  try { yourZone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { yourZone = ""; }
  // How long a relative time in this unit may wait before it is looked at again: its
  // words change at most once per unit.
  var recheck = { day: 600000, hour: 60000, minute: 5000, second: 1000 };
  // "3 minutes ago" ("3 min. ago" when short), and when to look at it again.
  function relative(date, short) {
    var f = short ? rtfShort : rtf;
    var secs = Math.round((date.getTime() - Date.now()) / 1000);
    for (var i = 0; i < units.length; i++) {
      var u = units[i];
      if (Math.abs(secs) >= u[1] || u[1] === 1) {
        var n = Math.round(secs / u[1]);
        return { text: f ? f.format(n, u[0]) : n + " " + u[0] + "s", wait: recheck[u[0]] };
      }
    }
    return { text: "", wait: 1000 };
  }
  // The reader's zone at `date` in short (e.g. "GMT+7", "CET"), else its name.
  function abbr(date) {
    try {
      var parts = fmtZone.formatToParts(date);
      for (var i = 0; i < parts.length; i++) if (parts[i].type === "timeZoneName") return parts[i].value;
    } catch (e) { /* old browser */ }
    return yourZone;
  }
  function localText(d) {
    return (fmtLocal ? fmtLocal.format(d) : d.toLocaleString()) + " " + abbr(d);
  }
  // A relative time: "3 minutes ago (Nov 23, 2026, 4:08:11 AM GMT+7)", or in a list
  // ("data-ago") just "3 min. ago", with the local time as its title. Notes when to
  // look at it again.
  function relativeText(el) {
    var rel = relative(new Date(el._t), el.hasAttribute("data-ago"));
    el._due = Date.now() + rel.wait;
    return el.hasAttribute("data-ago") ? rel.text : rel.text + " (" + el._local + ")";
  }
  // The relative times on the page, found again after each change of the page.
  var relTimes = null;
  function localise(root) {
    relTimes = null;
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      var zone = abbr(d);
      var local = localText(d);
      el._t = d.getTime();
      el._local = local;
      if (el.hasAttribute("data-ago")) {
        el.title = local;
        el.textContent = relativeText(el);
      } else if (el.hasAttribute("data-rel")) {
        el.title = el.getAttribute("datetime") + (yourZone ? " · your time zone: " + yourZone : "");
        el.textContent = relativeText(el);
      } else if (el.hasAttribute("data-clock")) {
        el.title = el.getAttribute("datetime") + (yourZone ? " · your time zone: " + yourZone : "");
        el.textContent = (fmtClock ? fmtClock.format(d) : d.toLocaleTimeString()) + " " + zone;
      } else if (el.hasAttribute("data-zone")) {
        el.title = el.getAttribute("datetime") + (yourZone ? " · your time zone: " + yourZone : "");
        // A schedule time shown in the job's zone beside it.
        var li = el.closest("li");
        if (yourZone && el.getAttribute("data-zone") === yourZone && li) {
          var other = li.querySelector(".your-zone");
          if (other) other.hidden = true;
          var note = li.querySelector(".zone-note");
          if (note) note.textContent = "(the job's zone and yours, " + yourZone + ")";
        }
        el.textContent = local + " (your time" + (yourZone ? ", " + yourZone : "") + ")";
      } else {
        el.title = el.getAttribute("datetime") + (yourZone ? " · your time zone: " + yourZone : "");
        el.textContent = local;
      }
    }
  }
  // Relative times move on: each is looked at again when its words may have changed.
  function refreshRelative() {
    if (!relTimes) relTimes = document.querySelectorAll("time[data-rel], time[data-ago]");
    var now = Date.now();
    for (var i = 0; i < relTimes.length; i++) {
      var el = relTimes[i];
      if (el._t === undefined || el._due > now) continue;
      var text = relativeText(el);
      if (el.textContent !== text) el.textContent = text;
    }
  }
  // A duration for people, as the server writes it: "< 1 s", "12 s", "3 min 4 s", "2 h 5 min".
  function duration(secs) {
    if (secs < 1) return "< 1 s";
    if (secs < 60) return secs + " s";
    if (secs < 3600) return Math.floor(secs / 60) + " min" + (secs % 60 ? " " + (secs % 60) + " s" : "");
    return Math.floor(secs / 3600) + " h" + (secs % 3600 >= 60 ? " " + Math.floor(secs % 3600 / 60) + " min" : "");
  }
  // Elapsed times of running runs (and services' uptimes) count on from what the
  // server said, by the browser's clock (so a skew between the two clocks does not
  // matter), between their optional `data-prefix` and `data-suffix`.
  function tickElapsed() {
    var els = document.querySelectorAll("[data-elapsed]");
    var now = Date.now();
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (!el.hasAttribute("data-t0")) el.setAttribute("data-t0", String(now));
      var base = Number(el.getAttribute("data-elapsed")) || 0;
      var secs = base + Math.floor((now - Number(el.getAttribute("data-t0"))) / 1000);
      var text = (el.getAttribute("data-prefix") || "") + duration(secs) + (el.getAttribute("data-suffix") || "");
      if (el.textContent !== text) el.textContent = text;
    }
  }
  // Counts live updates, for the tests and for curious readers.
  function counted() {
    document.body.setAttribute("data-updates", String(Number(document.body.getAttribute("data-updates") || 0) + 1));
  }
  function stopped(es) {
    if (es.readyState === EventSource.CLOSED) {
      var note = document.getElementById("live-note");
      if (note) note.hidden = false;
    }
  }
  // Runs `change`, which replaces parts of `root`, and gives the focus back to the link
  // that had it, when the new content has the same link.
  function keepFocus(root, change) {
    var had = document.activeElement;
    var href = had && had !== document.body && root.contains(had) ? had.getAttribute("href") : null;
    change();
    if (href && !document.body.contains(had)) {
      var links = root.querySelectorAll("a[href]");
      for (var i = 0; i < links.length; i++) {
        if (links[i].getAttribute("href") === href) { links[i].focus(); break; }
      }
    }
  }
  // A live part that the server sends whole with each change (a job's page).
  function plainRegion(el) {
    var es = new EventSource(el.getAttribute("data-events"));
    es.addEventListener("update", function (ev) {
      keepFocus(el, function () { el.innerHTML = ev.data; });
      localise(el);
      tickElapsed();
      counted();
    });
    es.onerror = function () { stopped(es); };
  }

  // The dashboard: its live part comes whole (`update`) or as the parts that changed
  // (`patch`); the views, search and filters around it stay as the reader left them.
  var VIEW_KEY = "karajo.dashboard.view";
  function dashboard(region) {
    var views = document.getElementById("dash-views");
    var tools = document.getElementById("dash-tools");
    var search = document.getElementById("dash-search");
    var shown = document.getElementById("dash-shown");
    var none = document.getElementById("dash-none");
    var filters = tools.querySelectorAll("button[data-filter]");
    var viewButtons = views.querySelectorAll("button[data-show]");
    var group = "all";
    var terms = [];
    var es = null;
    var rendered = region.getAttribute("data-view");
    var stored = null;
    try { stored = window.localStorage.getItem(VIEW_KEY); } catch (e) { stored = null; }
    views.hidden = false;
    tools.hidden = false;

    function searchText(item) {
      if (item._q === undefined) {
        var name = item.querySelector(".name");
        item._q = ((name ? name.textContent : "") + " " + item.getAttribute("data-key")).toLowerCase();
      }
      return item._q;
    }
    function matches(item) {
      if (group !== "all" && item.getAttribute("data-group") !== group) return false;
      if (!terms.length) return true;
      var text = searchText(item);
      for (var i = 0; i < terms.length; i++) if (text.indexOf(terms[i]) < 0) return false;
      return true;
    }
    // Shows the entries that match the search and the filter, and says how many.
    function apply() {
      var items = region.querySelectorAll("[data-key]");
      var n = 0;
      for (var i = 0; i < items.length; i++) {
        var ok = matches(items[i]);
        if (items[i].hidden === ok) items[i].hidden = !ok;
        if (ok) n++;
      }
      var narrowed = group !== "all" || terms.length > 0;
      var text = narrowed ? n + " of " + items.length + " shown" : "";
      if (shown.textContent !== text) shown.textContent = text;
      none.hidden = !(narrowed && n === 0 && items.length > 0);
    }
    // The filter buttons' counts, from the counts line of the live part.
    function counts() {
      var head = region.querySelector("[data-part='head']");
      var c = {};
      try { c = JSON.parse(head.getAttribute("data-counts")) || {}; } catch (e) { c = {}; }
      for (var i = 0; i < filters.length; i++) {
        var b = filters[i];
        var g = b.getAttribute("data-filter");
        var n = String(c[g] || 0);
        var span = b.querySelector(".n");
        if (span && span.textContent !== n) span.textContent = n;
        if (b.hasAttribute("data-optional")) b.hidden = n === "0" && group !== g;
      }
    }
    function refreshed(root) {
      localise(root);
      tickElapsed();
      apply();
      counts();
      counted();
    }
    function patch(data) {
      var p = JSON.parse(data);
      var tpl = document.createElement("template");
      function fresh(html) {
        tpl.innerHTML = html;
        return tpl.content.firstElementChild;
      }
      var missing = false;
      keepFocus(region, function () {
        if (p.head) {
          var head = region.querySelector("[data-part='head']");
          var h = fresh(p.head);
          if (head && h) head.replaceWith(h); else missing = true;
        }
        if (p.items && p.items.length) {
          var byKey = {};
          var items = region.querySelectorAll("[data-key]");
          for (var i = 0; i < items.length; i++) byKey[items[i].getAttribute("data-key")] = items[i];
          for (var j = 0; j < p.items.length; j++) {
            var old = byKey[p.items[j][0]];
            var el = fresh(p.items[j][1]);
            if (!old || !el) { missing = true; continue; }
            old.replaceWith(el);
            localise(el);
          }
        }
      });
      if (missing) {
        // The page and the stream disagree: start again from a whole update.
        connect(region.getAttribute("data-view"), false);
        return;
      }
      tickElapsed();
      apply();
      counts();
      counted();
    }
    function connect(view, fromPage) {
      if (es) es.close();
      var url = region.getAttribute("data-events") + "?view=" + encodeURIComponent(view);
      var have = region.getAttribute("data-have");
      if (fromPage && have) url += "&have=" + encodeURIComponent(have);
      region.removeAttribute("data-have");
      if (view !== region.getAttribute("data-view")) region.setAttribute("aria-busy", "true");
      var source = new EventSource(url);
      es = source;
      source.addEventListener("update", function (ev) {
        keepFocus(region, function () { region.innerHTML = ev.data; });
        region.setAttribute("data-view", view);
        region.removeAttribute("aria-busy");
        refreshed(region);
      });
      source.addEventListener("patch", function (ev) { patch(ev.data); });
      source.onerror = function () { stopped(source); };
    }
    function show(view, remember) {
      for (var i = 0; i < viewButtons.length; i++) {
        var b = viewButtons[i];
        b.setAttribute("aria-pressed", String(b.getAttribute("data-show") === view));
      }
      if (remember) {
        try { window.localStorage.setItem(VIEW_KEY, view); } catch (e) { /* private mode */ }
      }
      connect(view, !remember && view === rendered);
    }
    for (var i = 0; i < viewButtons.length; i++) {
      viewButtons[i].addEventListener("click", function (ev) {
        var view = ev.currentTarget.getAttribute("data-show");
        if (ev.currentTarget.getAttribute("aria-pressed") === "true") return;
        show(view, true);
      });
    }
    for (var k = 0; k < filters.length; k++) {
      filters[k].addEventListener("click", function (ev) {
        group = ev.currentTarget.getAttribute("data-filter");
        for (var i = 0; i < filters.length; i++) {
          filters[i].setAttribute("aria-pressed", String(filters[i].getAttribute("data-filter") === group));
        }
        apply();
        counts();
      });
    }
    function searched() {
      terms = search.value.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
      apply();
    }
    search.addEventListener("input", searched);
    // A value the browser restored (back and forward) applies at once.
    searched();
    counts();
    show(stored === "list" || stored === "cards" ? stored : rendered, false);
  }

  function liveRegions() {
    var els = document.querySelectorAll("[data-events]");
    for (var i = 0; i < els.length; i++) {
      if (els[i].hasAttribute("data-view")) dashboard(els[i]);
      else plainRegion(els[i]);
    }
  }
  // A running log follows its tail: it opens at the bottom and stays there as lines
  // arrive, until the reader scrolls up; scrolling back to the bottom follows again.
  function followLog() {
    var pre = document.querySelector("pre[data-follow]");
    if (!pre) return;
    var following = true;
    function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40; }
    function toBottom() { pre.scrollTop = pre.scrollHeight; }
    pre.setAttribute("data-following", "true");
    pre.addEventListener("scroll", function () {
      following = atBottom();
      pre.setAttribute("data-following", String(following));
    });
    toBottom();
    if (pre.getBoundingClientRect().bottom > window.innerHeight) pre.scrollIntoView({ block: "end" });
    var es = new EventSource(pre.getAttribute("data-follow"));
    es.addEventListener("append", function (ev) {
      pre.insertAdjacentHTML("beforeend", ev.data);
      if (following) toBottom();
    });
    es.addEventListener("end", function (ev) {
      es.close();
      var info = JSON.parse(ev.data);
      var badge = document.getElementById("run-status");
      if (badge) {
        badge.textContent = info.status;
        badge.className = "badge st-" + info.status;
      }
      var dur = document.getElementById("run-duration");
      if (dur) {
        dur.removeAttribute("data-elapsed");
        if (info.duration) dur.textContent = info.duration;
      }
      pre.removeAttribute("data-follow");
    });
  }
  // "Copy" buttons (a monitor's ping URL): shown where the browser lets a page write
  // to the clipboard (HTTPS and localhost); elsewhere one click selects the text.
  function copyButtons() {
    var buttons = document.querySelectorAll("button[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      var b = buttons[i];
      if (!navigator.clipboard || !window.isSecureContext) continue;
      b.hidden = false;
      b.addEventListener("click", function (ev) {
        var button = ev.currentTarget;
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (!source) return;
        navigator.clipboard.writeText(source.textContent).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 2000);
        }, function () { button.textContent = "Select and copy"; });
      });
    }
  }
  // A service's controls (`form[data-live-controls]`) post from the script and the page
  // stays: its live part shows what the control did. The notice or the error comes
  // from the page the server answers with (the redirect's page, or the error page).
  function liveControls() {
    var forms = document.querySelectorAll("form[data-live-controls]");
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener("submit", function (ev) {
        var form = ev.currentTarget;
        if (!window.fetch || !window.DOMParser || !window.URLSearchParams) return;
        ev.preventDefault();
        var body = new URLSearchParams();
        var fields = form.querySelectorAll("input, select, textarea");
        for (var j = 0; j < fields.length; j++) {
          var f = fields[j];
          if (f.name && !f.disabled) body.append(f.name, f.value);
        }
        var button = ev.submitter;
        if (button && button.name) body.append(button.name, button.value);
        var notice = document.getElementById("notice");
        var error = document.getElementById("control-error");
        function say(el, text) {
          if (!el) return;
          el.textContent = text;
          el.hidden = !text;
        }
        form.setAttribute("aria-busy", "true");
        // Not `form.action`: the buttons named "action" shadow it.
        fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" })
          .then(function (res) {
            return res.text().then(function (text) {
              var doc = new DOMParser().parseFromString(text, "text/html");
              if (res.ok) {
                var n = doc.getElementById("notice");
                say(error, "");
                say(notice, n ? n.textContent : "Done.");
              } else {
                var e = doc.querySelector(".error");
                say(notice, "");
                say(error, e ? e.textContent : "The control failed (" + res.status + ").");
              }
            });
          })
          .catch(function () {
            say(notice, "");
            say(error, "The control could not be sent; is karajo running?");
          })
          .then(function () { form.removeAttribute("aria-busy"); });
      });
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    var note = document.getElementById("zone-note");
    if (note && yourZone) note.textContent = "times are in your time zone, " + yourZone + " (" + abbr(new Date()) + "), unless labelled otherwise";
    tickElapsed();
    setInterval(refreshRelative, 1000);
    // Four times a second, so that each second shows on time whatever the phase.
    setInterval(tickElapsed, 250);
    liveRegions();
    followLog();
    copyButtons();
    liveControls();
  });
})();
