"""Services: the use cases, one folder per capability (core, jobs, programme, notifications,
sites, twin); they own transactions, and front-ends (API, CLI) stay thin. At the top:
``platform`` (the composition root, built from Settings), ``demo``, ``backup``, the programme
worker and the status queries behind /metrics and /readyz.
"""
