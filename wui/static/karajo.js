// karajo web UI: local times labelled with their zone, ticking elapsed times, live
// updates through Server-Sent Events, and the live run log. Pages work without it
// (they are server-rendered, times in UTC); this adds the viewer's time zone and the
// updates.
"use strict";
(function () {
  var units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  var rtf = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
  var yourZone = "";
  try { yourZone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { yourZone = ""; }
  function relative(date) {
    var secs = Math.round((date.getTime() - Date.now()) / 1000);
    for (var i = 0; i < units.length; i++) {
      var u = units[i];
      if (Math.abs(secs) >= u[1] || u[1] === 1) {
        var n = Math.round(secs / u[1]);
        return rtf ? rtf.format(n, u[0]) : n + " " + u[0] + "s";
      }
    }
    return "";
  }
  // The reader's zone at `date` in short (e.g. "GMT+7", "CET"), else its name.
  function abbr(date) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(date);
      for (var i = 0; i < parts.length; i++) if (parts[i].type === "timeZoneName") return parts[i].value;
    } catch (e) { /* old browser */ }
    return yourZone;
  }
  function localise(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      var zone = abbr(d);
      var local = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) + " " + zone;
      el.title = el.getAttribute("datetime") + (yourZone ? " · your time zone: " + yourZone : "");
      if (el.hasAttribute("data-rel")) {
        el.textContent = relative(d) + " (" + local + ")";
      } else if (el.hasAttribute("data-clock")) {
        el.textContent = d.toLocaleTimeString(undefined, { timeStyle: "medium" }) + " " + zone;
      } else if (el.hasAttribute("data-zone")) {
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
        el.textContent = local;
      }
    }
  }
  // A duration for people, as the server writes it: "< 1 s", "12 s", "3 min 4 s", "2 h 5 min".
  function duration(secs) {
    if (secs < 1) return "< 1 s";
    if (secs < 60) return secs + " s";
    if (secs < 3600) return Math.floor(secs / 60) + " min" + (secs % 60 ? " " + (secs % 60) + " s" : "");
    return Math.floor(secs / 3600) + " h" + (secs % 3600 >= 60 ? " " + Math.floor(secs % 3600 / 60) + " min" : "");
  }
  // Elapsed times of running runs count on from what the server said, by the
  // browser's clock (so a skew between the two clocks does not matter).
  function tickElapsed() {
    var els = document.querySelectorAll("[data-elapsed]");
    var now = Date.now();
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (!el.hasAttribute("data-t0")) el.setAttribute("data-t0", String(now));
      var base = Number(el.getAttribute("data-elapsed")) || 0;
      var secs = base + Math.floor((now - Number(el.getAttribute("data-t0"))) / 1000);
      var text = duration(secs) + (el.getAttribute("data-suffix") || "");
      if (el.textContent !== text) el.textContent = text;
    }
  }
  function liveRegions() {
    var els = document.querySelectorAll("[data-events]");
    for (var i = 0; i < els.length; i++) {
      (function (el) {
        var es = new EventSource(el.getAttribute("data-events"));
        es.addEventListener("update", function (ev) {
          el.innerHTML = ev.data;
          localise(el);
          tickElapsed();
          document.body.setAttribute("data-updates", String(Number(document.body.getAttribute("data-updates") || 0) + 1));
        });
        es.onerror = function () {
          if (es.readyState === EventSource.CLOSED) {
            var note = document.getElementById("live-note");
            if (note) note.hidden = false;
          }
        };
      })(els[i]);
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
  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    var note = document.getElementById("zone-note");
    if (note && yourZone) note.textContent = "times are in your time zone, " + yourZone + " (" + abbr(new Date()) + "), unless labelled otherwise";
    tickElapsed();
    setInterval(function () {
      var rel = document.querySelectorAll("time[data-rel]");
      for (var i = 0; i < rel.length; i++) localise(rel[i].parentNode);
    }, 1000);
    // Four times a second, so that each second shows on time whatever the phase.
    setInterval(tickElapsed, 250);
    liveRegions();
    followLog();
  });
})();
