"""Rows for the API's safety rules: token expiry and revocation, idempotency keys."""

from __future__ import annotations
