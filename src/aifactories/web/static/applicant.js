// The proposal form: when it comes back with errors, move the focus to their summary, so a
// keyboard or screen reader user starts at the list of what to fix (each entry links to its
// field). Without this script the summary is still announced (role="alert") and first.
const summary = document.getElementById("errors");
if (summary) summary.focus();
