"""slurmrestd's v0.0.38 mapping and JWT minting, without a site."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from aifactories.domain.errors import ConfigurationError
from aifactories.executors.slurm.batch import BatchJob
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
