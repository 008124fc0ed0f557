// The portal's own script: show every <time datetime> in the reader's own time zone.
// Pages work without it (the server writes UTC, labelled). Other scripts of the portal call
// aifLocalTimes on what they insert later (jobs.js: rows fetched again).
"use strict";

function aifLocalTimes(root) {
  root.querySelectorAll("time[datetime]").forEach((node) => {
    const moment = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) return;
    node.title = node.textContent;
    node.textContent = moment.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short",
    });
  });
}
window.aifLocalTimes = aifLocalTimes;
aifLocalTimes(document);
