"""Every endpoint with no token, a bad token and another project's token."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.harness import Harness, make_harness


@pytest.fixture
def harness(tmp_path: Path, database_url: str) -> Harness:
    h = make_harness(tmp_path, database_url)
    yield h  # type: ignore[misc]
    h.platform.stop()


def _alice_job(h: Harness) -> int:
    response = h.client("alice").post(
        "/jobs",
        json={"project": "aurora-vision", "gpus": 1, "time_limit": 600, "command": ["true"]},
    )
    assert response.status_code == 201
    return int(response.json()["id"])


ENDPOINTS = [
    ("GET", "/sites"),
    ("GET", "/me"),
    ("GET", "/jobs"),
    ("POST", "/jobs"),
    ("GET", "/jobs/{job}"),
    ("DELETE", "/jobs/{job}"),
    ("GET", "/projects/aurora-vision/balance"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_token_and_bad_token_get_401(harness: Harness, method: str, path: str) -> None:
    job = _alice_job(harness)
    for client in (harness.client(None), harness.client(None)):
        headers = {} if client is None else {"Authorization": "Bearer aif_not-a-token"}
        response = client.request(
            method,
            path.format(job=job),
            headers=headers,
            json={"project": "aurora-vision", "gpus": 1, "time_limit": 60}
            if method == "POST"
            else None,
        )
        assert response.status_code == 401
        assert "token" in response.json()["message"]


def test_other_project_sees_and_touches_nothing(harness: Harness) -> None:
    job = _alice_job(harness)
    carol = harness.client("carol")  # PI of kalevala-mri, not a member of aurora-vision
    assert carol.get(f"/jobs/{job}").status_code == 404
    assert carol.delete(f"/jobs/{job}").status_code == 404
    assert carol.get("/projects/aurora-vision/balance").status_code == 404
    assert carol.get("/jobs", params={"project": "aurora-vision"}).status_code == 404
    assert all(j["project_id"] != 1 for j in carol.get("/jobs").json())
    submit = carol.post(
        "/jobs", json={"project": "aurora-vision", "gpus": 1, "time_limit": 60, "command": ["true"]}
    )
    assert submit.status_code == 404
    # and the job is untouched
    assert harness.client("alice").get(f"/jobs/{job}").json()["state"] == "pending"


def test_member_versus_pi_and_operator(harness: Harness) -> None:
    job = _alice_job(harness)
    bob = harness.client("bob")  # member of aurora-vision
    assert bob.get(f"/jobs/{job}").status_code == 200
    assert bob.get("/projects/aurora-vision/balance").status_code == 200
    refused = bob.delete(f"/jobs/{job}")
    assert refused.status_code == 403 and "PI" in refused.json()["message"]
    oscar = harness.client("oscar")  # platform operator
    assert oscar.get(f"/jobs/{job}").status_code == 200
    assert len(oscar.get("/jobs").json()) == 1
    assert harness.client("alice").delete(f"/jobs/{job}").json()["state"] == "cancelled"
