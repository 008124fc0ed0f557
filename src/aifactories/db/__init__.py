"""Persistence: SQLAlchemy 2 models, Alembic migrations and repositories.

Repositories never commit: the services (and the broker's own steps) own transactions.
No engine is created at import time.
"""
