// tilewave dashboard: times in the viewer's time zone (UTC stays on
// hover), live updates from the page's event stream, and the
// "reconnecting" banner. The pages work without this script.
"use strict";
(function () {
  var fmt = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = d.toLocaleString([], fmt); }
    });
  }
  function banner(text) {
    var b = document.getElementById("banner");
    if (!b) { return; }
    if (text) { b.textContent = "reconnecting… " + text; b.hidden = false; } else { b.hidden = true; }
  }
  function apply(u) {
    var head = document.getElementById("head");
    if (head && u.head) { head.outerHTML = u.head; }
    var gantt = document.getElementById("gantt-box");
    if (gantt && u.gantt) { gantt.innerHTML = u.gantt; }
    (u.cells || []).forEach(function (c) {
      var el = document.querySelector('.cell[data-region="' + CSS.escape(c.region) + '"]');
      if (el) { el.className = "cell st-" + c.state; el.title = c.title; }
    });
    localTimes(document);
    window.tilewaveUpdates = (window.tilewaveUpdates || 0) + 1;
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var url = document.body.getAttribute("data-events");
    if (!url || !window.EventSource) { return; }
    var es = new EventSource(url);
    es.addEventListener("update", function (e) {
      banner(null);
      try { apply(JSON.parse(e.data)); } catch (err) { banner("a bad update: " + err); }
    });
    var pending = null;
    es.addEventListener("changed", function () {
      banner(null);
      if (pending) { return; }
      pending = setTimeout(function () {
        pending = null;
        fetch(location.href, { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) { throw new Error("status " + r.status); }
          return r.text();
        }).then(function (text) {
          var doc = new DOMParser().parseFromString(text, "text/html");
          var fresh = doc.querySelector("main"), here = document.querySelector("main");
          if (fresh && here) { here.innerHTML = fresh.innerHTML; localTimes(here); }
          window.tilewaveUpdates = (window.tilewaveUpdates || 0) + 1;
        }).catch(function (err) { banner("reading the page again failed: " + err); });
      }, 400);
    });
    es.addEventListener("reconnecting", function (e) { banner(e.data); });
    es.addEventListener("failed", function (e) { banner("the live feed stopped: " + e.data + " (refresh)"); });
    es.onerror = function () { banner("the dashboard does not answer"); };
  });
})();
