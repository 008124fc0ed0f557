"""Domain: frozen values, state machines, typed ids and the one error hierarchy.

Nothing here imports a database, web or CLI framework, and nothing reads the clock
except :mod:`aifactories.domain.clock`.
"""
