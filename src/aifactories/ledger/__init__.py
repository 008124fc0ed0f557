"""The ledger: budgets and charges. Reserve at placement, then charge the use and release the rest.

Pure arithmetic over :class:`Balance` values; the database layer applies the same moves with
conditional updates so that concurrent writers can never overdraw an allocation.
"""

from aifactories.ledger.balance import Balance, charge, release, reserve

__all__ = ["Balance", "charge", "release", "reserve"]
