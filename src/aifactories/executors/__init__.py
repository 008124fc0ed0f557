"""Executors: one small back-end per kind of site, built like httpx transports.

The required contract is :class:`~aifactories.executors.base.Executor`; back-end errors are
translated at this boundary into :class:`~aifactories.domain.errors.ExecutorError` subclasses.
"""
