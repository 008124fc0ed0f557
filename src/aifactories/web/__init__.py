"""The web portal: server-rendered pages over the same services as the API (no rule lives
here), with its own CSS and a few lines of JavaScript served by the platform itself."""
