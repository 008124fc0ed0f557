// Live jobs without a reload (the pages work without this script; they just do not refresh):
// - a list's table body (#job-rows) is fetched again while a job in it is not finished;
// - a job's summary (#job-summary) likewise, its state announced in a polite live region;
// - a log (<pre data-src data-offset>) is followed while "Follow while it runs" is ticked:
//   new bytes are decoded as UTF-8 across reads and appended as text, never as HTML.
"use strict";

const LIST_EVERY_MS = 5000;
const JOB_EVERY_MS = 4000;
const LOG_EVERY_MS = 2000;

// portal.js (loaded first) shows <time> in the reader's zone; rows fetched later need the same
const localTimes = (root) => window.aifLocalTimes(root);

// Fetch the fragment at node's data-src and put it in node's place; the server renders it
// with the same escaping as the page. Returns the new node, or null if the fetch failed.
async function refresh(node) {
  const answer = await fetch(node.dataset.src, { credentials: "same-origin", cache: "no-store" });
  if (!answer.ok) return null;
  const parsed = new DOMParser().parseFromString(
    node.tagName === "TBODY" ? `<table>${await answer.text()}</table>` : await answer.text(),
    "text/html",
  );
  const fresh = parsed.getElementById(node.id);
  if (!fresh) return null;
  const adopted = document.importNode(fresh, true);
  localTimes(adopted);
  node.replaceWith(adopted);
  return adopted;
}

function say(regionId, text) {
  const region = document.getElementById(regionId);
  if (region && text && region.textContent !== text) region.textContent = text;
}

// keep refreshing the element with this id while its data-live / data-final says so
function keepFresh(id, every, isLive, regionId, message) {
  const tick = async () => {
    const node = document.getElementById(id);
    if (!node || !isLive(node)) return;
    if (node.contains(document.activeElement)) {
      // replacing it would take the keyboard focus away from a link in it: later
      setTimeout(tick, every);
      return;
    }
    let fresh = null;
    try {
      fresh = await refresh(node);
    } catch (err) {
      fresh = null; // the network or the server hiccupped: try again later
    }
    const current = fresh || document.getElementById(id);
    if (current) say(regionId, message(current));
    if (current && isLive(current)) setTimeout(tick, every);
  };
  setTimeout(tick, every);
}

function followLog(pre, box) {
  const decoder = new TextDecoder("utf-8");
  let offset = Number(pre.dataset.offset || "0");
  const tick = async () => {
    if (!box.checked) return;
    let ended = false;
    try {
      const url = `${pre.dataset.src}&offset=${offset}`;
      const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok) {
        const bytes = new Uint8Array(await answer.arrayBuffer());
        ended = answer.headers.get("X-Job-Final") === "1" && bytes.length === 0;
        if (bytes.length) {
          offset += bytes.length;
          const section = pre.closest("section");
          section.querySelector(".note")?.remove(); // "no output yet" is no longer true
          const download = section.querySelector("a.download");
          if (download) download.hidden = false;
          const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.append(document.createTextNode(decoder.decode(bytes, { stream: true })));
          if (atEnd) pre.scrollTop = pre.scrollHeight;
        }
      } else if (answer.status === 404 || answer.status === 410 || answer.status === 403) {
        ended = true;
      }
    } catch (err) {
      ended = false; // try again
    }
    if (ended) {
      box.checked = false;
      box.disabled = true;
      return;
    }
    setTimeout(tick, LOG_EVERY_MS);
  };
  box.addEventListener("change", () => { if (box.checked) tick(); });
  tick();
}

keepFresh("job-rows", LIST_EVERY_MS, (n) => n.dataset.live === "1", "jobs-live",
  (n) => n.dataset.summary);
keepFresh("job-summary", JOB_EVERY_MS, (n) => n.dataset.final !== "1", "job-live", (n) => {
  // an ended job cannot be cancelled any more: the button goes
  if (n.dataset.final === "1") document.getElementById("job-cancel")?.remove();
  return n.dataset.state;
});

document.querySelectorAll("input[data-follow]").forEach((box) => {
  const pre = document.getElementById(box.dataset.follow);
  if (!pre) return;
  box.closest("label").hidden = false;
  if (pre.dataset.final !== "1") followLog(pre, box);
});
