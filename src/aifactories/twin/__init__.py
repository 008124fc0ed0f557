"""The digital twin: a deterministic discrete-event simulator of the federation that drives the
very ``run_cycle`` and policies the broker uses, on real or generated traces.

It imports no database, web or CLI framework (import-linter contract).
"""
