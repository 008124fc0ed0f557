from tests.web.harness import h  # noqa: F401  (the platform fixture of every portal test)
