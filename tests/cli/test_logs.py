"""``aif logs``: the real command against a real platform (``aif up --demo``) whose emulated
sites run real jobs: the output as the job wrote it, followed to the job's end, the last
lines, standard error in its own file, clear messages, and Ctrl-C that ends quietly."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.server import AIF, Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("logs")
    srv = Server(home, f"sqlite:///{home / 'aif.db'}")
    srv.start("--demo")
    yield srv
    srv.stop()


def _env(srv: Server) -> dict[str, str]:
    return {**srv.env, "AIFACTORIES_SERVER": srv.url, "AIFACTORIES_TOKEN": srv.token("alice")}


def _submit(srv: Server, **body: object) -> str:
    headers = {"Authorization": f"Bearer {srv.token('alice')}"}
    job = {"project": "aurora-vision", "gpus": 1, "time_limit": 600, **body}
    created = httpx.post(f"{srv.url}/jobs", json=job, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _logs(srv: Server, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [AIF, "logs", *args], env=_env(srv), capture_output=True, timeout=120, check=False
    )


def test_follow_prints_every_line_and_ends_with_the_job(served: Server) -> None:
    script = 'for i in 1 2 3; do echo "line $i"; sleep 0.2; done; echo "oops" >&2'
    job = _submit(served, command=["sh", "-c", script])
    followed = _logs(served, job, "--follow")
    assert followed.returncode == 0, followed.stderr
    # without --error, standard error goes with the output, as in Slurm
    assert followed.stdout == b"line 1\nline 2\nline 3\noops\n"

    again = _logs(served, job)
    assert again.stdout == followed.stdout
    assert _logs(served, job, "-n", "2").stdout == b"line 3\noops\n"
    separate = _logs(served, job, "--error")
    assert separate.returncode == 3 and b"no separate standard error" in separate.stderr


def test_standard_error_in_its_own_file(served: Server) -> None:
    script = "#!/bin/sh\n#SBATCH --error=job-%j.err\necho fine\necho broken >&2\n"
    job = _submit(served, script=script)
    assert _logs(served, job, "-f").stdout == b"fine\n"
    error = _logs(served, job, "--error")
    assert error.returncode == 0 and error.stdout == b"broken\n"


def test_an_unknown_job_says_so(served: Server) -> None:
    missing = _logs(served, "999999")
    assert missing.returncode == 3
    assert b"job 999999 does not exist" in missing.stderr and missing.stdout == b""
    malformed = _logs(served, "12_x")
    assert malformed.returncode == 2 and b"'12_x' is not a job id" in malformed.stderr


def test_ctrl_c_ends_quietly(served: Server) -> None:
    job = _submit(served, command=["sh", "-c", "echo started; sleep 120"])
    follower = subprocess.Popen(
        [AIF, "logs", "-f", job], env=_env(served), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert follower.stdout is not None
        seen = b""
        with selectors.DefaultSelector() as selector:
            selector.register(follower.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 60
            while b"started\n" not in seen and time.monotonic() < deadline:
                if selector.select(timeout=1):
                    seen += os.read(follower.stdout.fileno(), 4096)
        assert seen == b"started\n"
        follower.send_signal(signal.SIGINT)
        _out, err = follower.communicate(timeout=30)
        assert follower.returncode == 130
        assert b"Traceback" not in err and b"Aborted" not in err
    finally:
        if follower.poll() is None:
            follower.kill()
        headers = {"Authorization": f"Bearer {served.token('alice')}"}
        httpx.delete(f"{served.url}/jobs/{job}", headers=headers, timeout=30)


def test_a_job_that_has_not_started_says_so(served: Server) -> None:
    first = _submit(served, command=["sh", "-c", "sleep 120"])
    waiting = _submit(
        served, script=f"#!/bin/sh\n#SBATCH --dependency=afterok:{first}\necho later\n"
    )
    try:
        shown = _logs(served, waiting)
        assert shown.returncode == 0 and shown.stdout == b""
        assert f"job {waiting} is pending: it has no output yet".encode() in shown.stderr
    finally:
        headers = {"Authorization": f"Bearer {served.token('alice')}"}
        for job in (waiting, first):
            httpx.delete(f"{served.url}/jobs/{job}", headers=headers, timeout=30)
