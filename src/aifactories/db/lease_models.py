"""Rows for running several platform instances on one database: the broker lease."""

from __future__ import annotations
