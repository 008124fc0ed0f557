"""Run by test_emulated_restart: submit jobs to an emulated site, print their ids, then die
by SIGKILL, as a platform process killed right after a submit would."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from aifactories.domain.clock import SystemClock
from aifactories.executors.emulated import EmulatedExecutor

from .conftest import FAST, SITE, one, request


def main(state_dir: str) -> None:
    executor = EmulatedExecutor(SITE, Path(state_dir), SystemClock(), FAST)
    ids = [
        executor.submit(request(1, one(4), runtime_s=300)),
        executor.submit(request(2, one(4), runtime_s=300)),
        executor.submit(request(3, one(4), runtime_s=300)),  # queued: the site is full
    ]
    print(json.dumps(ids), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1])
