"""A real Prometheus scrapes a real platform (``aif up --demo``, a process) every second on
loopback; the series are read back through Prometheus's own query API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, free_port

pytestmark = pytest.mark.slow

# Small sites, so that the test waits for nothing it does not need.
CATALOGUE = """
sites:
  - {id: it4lia, name: Leonardo, country: IT, supercomputer: Leonardo, status: operational,
     partitions: [{name: booster, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4,
                   nodes: 2}]}
  - {id: jaif, name: JUPITER, country: DE, supercomputer: JUPITER, status: operational,
     partitions: [{name: booster, gpu_model: GH200, gpu_memory_gb: 96, gpus_per_node: 4,
                   nodes: 2, billing_weight: 2.2}]}
"""


def _prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if found is None:
        message = "Debian's prometheus is not installed (scripts/check installs it as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    (tmp_path / "catalogue.yaml").write_text(CATALOGUE)
    srv = Server(
        tmp_path,
        database_url,
        extra_env={"AIFACTORIES_CATALOGUE": str(tmp_path / "catalogue.yaml")},
    )
    srv.start("--demo", "--log-format", "json")
    yield srv
    srv.stop()


@pytest.fixture
def prometheus(tmp_path: Path, server: Server) -> Iterator[str]:
    binary = _prometheus_binary()
    home = tmp_path / "prometheus"
    home.mkdir()
    config = home / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: aifactories\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{server.port}']}}]\n"
    )
    url = f"http://127.0.0.1:{free_port()}"
    with open(home / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
        )
    try:
        _wait_for(lambda: _ready(url, process, home), "prometheus to be ready")
        yield url
    finally:
        process.terminate()  # by its PID: only the process this test started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url: str, process: subprocess.Popen[bytes], home: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"prometheus exited: {(home / 'prometheus.log').read_text()}")
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _positive(prometheus: str, promql: str) -> bool:
    return any(float(r["value"][1]) > 0 for r in _query(prometheus, promql))


def test_prometheus_reads_the_platform_series(server: Server, prometheus: str) -> None:
    headers = {"Authorization": f"Bearer {server.token('alice')}"}
    for gpus in (1, 2, 4):
        body = {"project": "aurora-vision", "gpus": gpus, "time_limit": 3600, "runtime": 60}
        response = httpx.post(f"{server.url}/jobs", json=body, headers=headers, timeout=10)
        assert response.status_code == 201, response.text

    jobs_route = 'aif_http_request_duration_seconds_count{route="/jobs",method="POST"}'
    _wait_for(lambda: _positive(prometheus, jobs_route), "the /jobs latency series")
    _wait_for(
        lambda: _positive(prometheus, "sum(aif_broker_placements_total)"), "placements counted"
    )
    free = _query(prometheus, 'aif_partition_free_gpus{site="jaif",partition="booster"}')
    assert len(free) == 1 and 0 <= float(free[0]["value"][1]) <= 8
    gpus = _query(prometheus, "sum(aif_partition_gpus)")
    assert float(gpus[0]["value"][1]) == 16
    up = _query(prometheus, 'up{job="aifactories"}')
    assert float(up[0]["value"][1]) == 1

    # the probes need no token; the access log (JSON here) names the principal, not the token
    assert httpx.get(f"{server.url}/livez", timeout=5).status_code == 200
    assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
    log = (server.home / "server.log").read_text()
    access = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"aifactories.access"' in line
    ]
    posts = [a for a in access if a["method"] == "POST" and a["route"] == "/jobs"]
    assert len(posts) == 3 and all(a["status"] == 201 and a["principal_id"] for a in posts)
    assert server.token("alice") not in log
