"""The broker: the live loop. snapshot -> run_cycle -> apply -> reconcile.

The only place where decisions become side effects. Each step owns short transactions of its
own (the loop is a use case that runs forever, not a request), and every state change that
matters is committed together with its ledger move.
"""

from aifactories.broker.loop import Broker, CycleReport

__all__ = ["Broker", "CycleReport"]
