"""slurmrestd's v0.0.38 mapping, JWT minting, and the executor over replies recorded from a
real slurmrestd 22.05.8 (no site needed: the cases a live site cannot easily produce)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from aifactories.domain.errors import (
    ConfigurationError,
    ProtocolError,
    SiteUnavailable,
    SubmissionRejected,
)
from aifactories.domain.ids import JobId, SiteId
from aifactories.domain.jobs import JobSpec, JobState, shape_on
from aifactories.domain.sites import Partition, Site, SiteStatus
from aifactories.executors.base import SubmitRequest, job_tag
from aifactories.executors.slurm.batch import BatchJob
from aifactories.executors.slurm.rest import SlurmRestExecutor
from aifactories.executors.slurm.rest_api import rest_api
from aifactories.executors.slurm.token import TokenSource, claims_of, mint


def _job(**changes: object) -> BatchJob:
    values: dict[str, object] = {
        "name": "aif-ab12cd34-7_train",
        "tag": "aif-ab12cd34-7",
        "account": "aurora-vision",
        "partition": "gpu",
        "nodes": 2,
        "gpus_per_node": 4,
        "gpu_type": "a100",
        "exclusive": True,
        "time_limit_min": 10,
        "script": "#!/bin/bash\ntrue\n",
        "workdir": "/tmp",
        "output": "/tmp/x-%j.out",
        "environment": {"PATH": "/usr/bin:/bin"},
    }
    values.update(changes)
    return BatchJob(**values)  # type: ignore[arg-type]


def test_the_submit_body_is_what_slurmrestd_2205_accepts() -> None:
    body = rest_api("v0.0.38").submit_body(_job())
    job = body["job"]
    assert body["script"].startswith("#!/bin/bash")
    assert job["gres"] == "gpu:a100:4"  # per node; tres_per_node is refused by 22.05
    assert job["nodes"] == "2-2" and job["exclusive"] == "exclusive"
    assert job["comment"] == "aif-ab12cd34-7" and job["time_limit"] == 10
    assert job["environment"]["PATH"] and "qos" not in job
    single = rest_api("v0.0.38").submit_body(_job(nodes=1, exclusive=False, gpu_type=None))
    assert single["job"]["gres"] == "gpu:4" and "exclusive" not in single["job"]


def test_replies_and_errors_are_read() -> None:
    api = rest_api("v0.0.38")
    reply = {
        "errors": [
            {"error": "Unspecified error", "description": "Invalid account", "error_number": -1}
        ],
        "job_id": 100008,
    }
    assert api.errors(reply) == ["Unspecified error: Invalid account"]
    assert api.submitted_id(reply) == "100008" and api.error_numbers(reply) == {-1}
    assert api.job_records({"jobs": [{"job_id": 1}, "junk"]}) == [{"job_id": 1}]
    with pytest.raises(ValueError):
        api.job_records({"errors": []})


def test_an_unknown_version_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"v0\.0\.38"):
        rest_api("v0.0.99")


def test_a_minted_token_is_a_valid_hs256_jwt_for_slurm() -> None:
    key = b"k" * 32
    token = mint(key, "aifjob", 1_800_000_000, lifespan_s=60)
    header, payload, signature = token.split(".")
    expected = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)) == expected
    assert claims_of(token) == {"exp": 1_800_000_060, "iat": 1_800_000_000, "sun": "aifjob"}


def test_tokens_are_renewed_before_they_expire(tmp_path: Path) -> None:
    key = tmp_path / "jwt.key"
    key.write_bytes(b"s" * 32)
    now = [1_800_000_000.0]
    source = TokenSource("s1", "aifjob", jwt_key_file=str(key), clock=lambda: now[0])
    first = source.token()
    now[0] += 60
    assert source.token() == first
    now[0] += 3300  # within ten minutes of expiry
    assert source.token() != first


def test_exactly_one_credential_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        TokenSource("s1", "u")
    with pytest.raises(ConfigurationError, match="no token file"):
        TokenSource("s1", "u", token_file=str(tmp_path / "missing"))


# -- the executor against replies recorded from slurmrestd 22.05.8 (v0.0.38) -----------------

_PARTITIONS = {"partitions": [{"name": "gpu"}], "errors": []}
_NODES = {
    "nodes": [
        {"name": "n1", "state": "mixed", "state_flags": [], "gres": "gpu:a100:4",
         "gres_used": "gpu:a100:3(IDX:0-2)", "partitions": ["gpu"]},
        {"name": "n2", "state": "idle", "state_flags": [], "gres": "gpu:a100:4",
         "gres_used": "gpu:a100:0(IDX:N/A)", "partitions": ["gpu"]},
        {"name": "n3", "state": "idle", "state_flags": ["DRAIN"], "gres": "gpu:a100:4",
         "gres_used": "gpu:a100:0(IDX:N/A)", "partitions": ["gpu"]},
    ],
    "errors": [],
}  # fmt: skip
_RECORD = {
    "job_id": 100001, "job_state": "RUNNING", "state_reason": "None", "comment": "aif-9",
    "name": "aif-9_x", "nodes": "n1", "start_time": 1795885916, "end_time": 1795886216,
    "submit_time": 1795885915, "exit_code": 0, "gres_detail": ["gpu:a100:3(IDX:0-2)"],
    "tres_per_node": "gres:gpu:a100:3", "node_count": 1, "account": "p", "partition": "gpu",
    "time_limit": 5,
}  # fmt: skip
_PENDING = {
    **_RECORD, "job_id": 100003, "job_state": "PENDING", "state_reason": "Resources",
    "comment": "aif-10", "name": "aif-10_x", "nodes": "", "start_time": 0, "end_time": 0,
    "gres_detail": [],
}  # fmt: skip
_UNKNOWN_JOB = {
    "errors": [{"description": "unable to kill JobId=99999 with signal 9: Invalid job id "
                "specified", "error_number": 2017, "error": "Invalid job id specified",
                "source": "slurm_kill_job"}],
}  # fmt: skip
_NO_CONTROLLER = {
    "errors": [{"description": "Failed while looking for jobs", "error_number": -1,
                "error": "Unspecified error", "source": "slurm_load_jobs"}],
}  # fmt: skip
_NO_FIT = {
    "errors": [{"error_code": 2014, "error": "Requested node configuration is not available"}]
}


def _site() -> Site:
    return Site(
        id=SiteId("s1"),
        name="s1",
        country="FI",
        supercomputer="test",
        status=SiteStatus.OPERATIONAL,
        partitions=(Partition(SiteId("s1"), "gpu", "A100", 40, 3, 4),),
    )


def _replaying(
    tmp_path: Path, routes: Mapping[tuple[str, str], tuple[int, object]], seen: list[str]
) -> SlurmRestExecutor:
    """An executor whose slurmrestd answers ``routes[(method, path suffix)]``."""

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-SLURM-USER-NAME"] == "aifjob"
        assert claims_of(request.headers["X-SLURM-USER-TOKEN"])["sun"] == "aifjob"
        suffix = request.url.path.removeprefix("/slurm/v0.0.38/")
        seen.append(f"{request.method} {suffix}")
        status, body = routes.get((request.method, suffix), (404, "Not Found"))
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    key = tmp_path / "jwt.key"
    key.write_bytes(b"k" * 32)
    return SlurmRestExecutor(
        _site(),
        "http://127.0.0.1:9",
        "aifjob",
        jwt_key_file=str(key),
        clock=lambda: 1795885920.0,
        transport=httpx.MockTransport(handle),
    )


def test_poll_maps_records_and_leaves_unknown_jobs_out(tmp_path: Path) -> None:
    routes = {("GET", "jobs"): (200, {"jobs": [_RECORD, _PENDING], "errors": []})}
    seen: list[str] = []
    rest = _replaying(tmp_path, routes, seen)
    polled = rest.poll(["100001", "100003", "99999"])
    assert set(polled) == {"100001", "100003"} and seen == ["GET jobs"]  # one request
    running, queued = polled["100001"], polled["100003"]
    assert running.state is JobState.RUNNING and running.allocated_gpus == 3
    assert running.tag == "aif-9" and running.started_at == 1795885916
    assert queued.state is JobState.SUBMITTED and queued.reason
    found = rest.find_by_tag("aif-10")
    assert found is not None and found.site_job_id == "100003"
    assert rest.find_by_tag("aif-11") is None


def test_a_hopeless_pending_job_is_cancelled_and_failed(tmp_path: Path) -> None:
    hopeless = {**_PENDING, "state_reason": "InvalidAccount"}
    routes = {
        ("GET", "jobs"): (200, {"jobs": [hopeless], "errors": []}),
        ("DELETE", "job/100003"): (200, {"errors": []}),
    }
    seen: list[str] = []
    rest = _replaying(tmp_path, routes, seen)
    failed = rest.poll(["100003"])["100003"]
    assert failed.state is JobState.FAILED and "InvalidAccount" in (failed.reason or "")
    assert "DELETE job/100003" in seen


def test_capacity_counts_free_gpus_per_node_and_nothing_on_drained_nodes(
    tmp_path: Path,
) -> None:
    routes = {("GET", "partitions"): (200, _PARTITIONS), ("GET", "nodes"): (200, _NODES)}
    rest = _replaying(tmp_path, routes, [])
    (gpu,) = rest.capacity()
    # n1: 1 free, n2: 4 free, n3 drained: 0.
    assert gpu.partition_name == "gpu" and gpu.free_nodes_by_free_gpus == (1, 1, 0, 0, 1)


def test_a_refused_submission_carries_slurms_reason(tmp_path: Path) -> None:
    routes = {("GET", "partitions"): (200, _PARTITIONS), ("POST", "job/submit"): (500, _NO_FIT)}
    rest = _replaying(tmp_path, routes, [])
    with pytest.raises(SubmissionRejected) as refused:
        rest.submit(_request())
    assert refused.value.reason == "Requested node configuration is not available"


def test_cancelling_an_unknown_job_is_no_error(tmp_path: Path) -> None:
    rest = _replaying(tmp_path, {("DELETE", "job/99999"): (500, _UNKNOWN_JOB)}, [])
    rest.cancel("99999")


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (401, "Authentication failure", ProtocolError, "jwt_key_file"),
        (500, _NO_CONTROLLER, SiteUnavailable, "controller unreachable"),
        (200, "<html>proxy error</html>", ProtocolError, "no JSON"),
        (200, {"errors": []}, ProtocolError, "no 'jobs' list"),
    ],
)
def test_http_failures_become_the_platforms_errors(
    tmp_path: Path, status: int, body: object, error: type[Exception], words: str
) -> None:
    rest = _replaying(tmp_path, {("GET", "jobs"): (status, body)}, [])
    with pytest.raises(error, match=words):
        rest.poll(["1"])


def test_no_connection_makes_the_site_unavailable(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    key = tmp_path / "jwt.key"
    key.write_bytes(b"k" * 32)
    rest = SlurmRestExecutor(
        _site(), "http://127.0.0.1:9", "u", jwt_key_file=str(key),
        transport=httpx.MockTransport(refuse),
    )  # fmt: skip
    with pytest.raises(SiteUnavailable, match="Connection refused"):
        rest.capacity()


def _request() -> SubmitRequest:
    spec = JobSpec(gpus=1, time_limit_s=300, command=("true",))
    partition = _site().partitions[0]
    shape = shape_on(spec, partition.gpus_per_node, partition.nodes)
    assert shape is not None
    return SubmitRequest(JobId(7), job_tag(7), partition, shape, spec, "proj", "tester")


# Recorded from 22.05.8 with slurmctld stopped, and with a token signed by another key.
_NODES_DOWN = {"errors": [{"error": "Unspecified error", "errno": -1}], "nodes": []}
_PARTITIONS_DOWN = {"errors": [{"error": "Unspecified error", "errno": -1}], "partitions": []}
_KILL_DOWN = {
    "errors": [{"description": "unable to kill JobId=0 with signal 9: Unable to contact slurm "
                "controller (connect failure)", "error_number": 1800,
                "error": "Unable to contact slurm controller (connect failure)",
                "source": "slurm_kill_job"}],
}  # fmt: skip
_KILL_REFUSED = {
    "errors": [{"description": "unable to kill JobId=0 with signal 9: Zero Bytes were "
                "transmitted or received", "error_number": 5005,
                "error": "Zero Bytes were transmitted or received", "source": "slurm_kill_job"}],
}  # fmt: skip
_SUBMIT_REFUSED = {
    "errors": [{"error_code": 5005, "error": "Zero Bytes were transmitted or received"}]
}


def test_error_numbers_are_read_under_all_three_names() -> None:
    api = rest_api("v0.0.38")
    assert api.error_numbers(_NODES_DOWN) == {-1}
    assert api.error_numbers(_SUBMIT_REFUSED) == {5005}
    assert api.error_numbers(_KILL_DOWN) == {1800}
    assert api.unreachable("GET", 500, _NODES_DOWN) and api.unreachable("DELETE", 500, _KILL_DOWN)
    assert not api.unreachable("DELETE", 500, _UNKNOWN_JOB)
    assert not api.unreachable("POST", 500, _NO_FIT)
    # -1 on submit is a refusal like any other, not an outage
    assert not api.unreachable("POST", 500, {"errors": [{"error_code": -1, "error": "x"}]})


def test_an_outage_is_never_taken_for_a_missing_partition(tmp_path: Path) -> None:
    # 22.05 sends an empty list beside the error: it must not read as "no partitions".
    routes = {
        ("GET", "partitions"): (500, _PARTITIONS_DOWN),
        ("DELETE", "job/0"): (500, _KILL_DOWN),
    }
    seen: list[str] = []
    with pytest.raises(SiteUnavailable, match="unreachable"):
        _replaying(tmp_path, routes, seen).capacity()
    assert seen == ["GET partitions", "DELETE job/0"]  # never answered yet: diagnosed once
    routes = {("GET", "partitions"): (200, _PARTITIONS), ("GET", "nodes"): (500, _NODES_DOWN)}
    seen = []
    with pytest.raises(SiteUnavailable, match="unreachable"):
        _replaying(tmp_path, routes, seen).capacity()
    assert seen == ["GET partitions", "GET nodes"]  # the token worked: an outage, no probe


def test_a_refused_token_is_told_apart_from_a_dead_controller(tmp_path: Path) -> None:
    routes = {("GET", "jobs"): (500, _NO_CONTROLLER), ("DELETE", "job/0"): (500, _KILL_REFUSED)}
    with pytest.raises(ProtocolError, match=r"refused our token.*jwt_key_file"):
        _replaying(tmp_path, routes, []).poll(["1"])
    routes = {
        ("GET", "partitions"): (200, _PARTITIONS),
        ("POST", "job/submit"): (500, _SUBMIT_REFUSED),
    }
    seen: list[str] = []
    with pytest.raises(ProtocolError, match="refused our token"):
        _replaying(tmp_path, routes, seen).submit(_request())
    assert "DELETE job/0" not in seen  # submit says so itself, even after the token worked


def test_an_expired_token_file_is_reported_before_it_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(mint(b"k" * 32, "aifjob", 1_800_000_000, lifespan_s=60) + "\n")
    now = [1_800_000_030.0]
    source = TokenSource("s1", "aifjob", token_file=str(path), clock=lambda: now[0])
    assert source.token() == path.read_text().strip()
    now[0] += 60
    with pytest.raises(ProtocolError, match="expired"):
        source.token()
    path.write_text("opaque-token-without-claims")
    assert source.token() == "opaque-token-without-claims"  # slurmctld will judge it
