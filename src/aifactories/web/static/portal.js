// The portal's only script: show every <time datetime> in the reader's own time zone.
// Pages work without it (the server writes UTC, labelled).
document.querySelectorAll("time[datetime]").forEach((node) => {
  const moment = new Date(node.getAttribute("datetime"));
  if (Number.isNaN(moment.getTime())) return;
  node.title = node.textContent;
  node.textContent = moment.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short",
  });
});
