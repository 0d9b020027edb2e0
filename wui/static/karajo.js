// karajo web UI: local times, live updates through Server-Sent Events, and the
// live run log. Pages work without it (they are server-rendered); this only adds
// the viewer's time zone and the updates.
"use strict";
(function () {
  var units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  var rtf = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
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
  function localise(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      var local = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
      el.title = el.getAttribute("datetime");
      el.textContent = el.hasAttribute("data-rel") ? relative(d) + " (" + local + ")" : local;
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
  function followLog() {
    var pre = document.querySelector("pre[data-follow]");
    if (!pre) return;
    var es = new EventSource(pre.getAttribute("data-follow"));
    es.addEventListener("append", function (ev) {
      var atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      pre.insertAdjacentHTML("beforeend", ev.data);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
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
      if (dur && info.duration) dur.textContent = info.duration;
      pre.removeAttribute("data-follow");
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    setInterval(function () {
      var rel = document.querySelectorAll("time[data-rel]");
      for (var i = 0; i < rel.length; i++) localise(rel[i].parentNode);
    }, 1000);
    liveRegions();
    followLog();
  });
})();
