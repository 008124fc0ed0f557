"""The jobs pages: the list with its filters and live fragment, a job's page (placement,
charge, warnings, options, logs), following and downloading the output, cancel, and submit
(a script's #SBATCH lines, a refused directive, the budget). Role boundaries as the API's:
another project's member gets 404 everywhere, a programme operator sees the job but not
its output."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import update

from aifactories.db.models import JobRow
from aifactories.domain.ids import SiteId
from aifactories.executors.mock import MockExecutor
from tests.api.harness import Harness
from tests.web.harness import browser, csrf, portal

SCRIPT = """#!/bin/bash
#SBATCH --job-name=train-vision
#SBATCH --gpus=2
#SBATCH --time=00:30:00
#SBATCH --qos=high
#SBATCH --output=train-%j.log
python3 train.py
"""


def _submit(client: TestClient, **fields: str) -> str:
    """Submit through the form; the new job's ref (from the redirect)."""
    data = {"project": "aurora-vision", "csrf": csrf(client, "/portal/submit"), **fields}
    answer = client.post("/portal/submit", data=data)
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/portal/jobs/(\d+)", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def _api_job(h: Harness, ref: str, user: str = "alice") -> dict[str, object]:
    answer = h.client(user).get(f"/jobs/{ref}")
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def _running(h: Harness, client: TestClient) -> tuple[str, MockExecutor, str]:
    ref = _submit(client, command="python3 train.py", gpus="1", time="60")
    h.cycle(rounds=2)
    job = _api_job(h, ref)
    assert job["state"] == "running", job
    site = h.executors[SiteId(str(job["site_id"]))]
    assert isinstance(site, MockExecutor)
    return ref, site, str(job["site_job_id"])


def test_a_script_with_sbatch_lines_becomes_a_job_and_its_page_says_so(h: Harness) -> None:
    alice = portal(h, "alice")
    form = alice.get("/portal/submit")
    assert form.status_code == 200
    assert '<option value="aurora-vision"' in form.text and "kalevala-mri" not in form.text
    assert 'for="script"' in form.text and 'enctype="multipart/form-data"' in form.text

    # a browser sends a text area's lines with CRLF: the job gets the script's own lines
    ref = _submit(alice, script=SCRIPT.replace("\n", "\r\n"))
    job = _api_job(h, ref)
    assert job["name"] == "train-vision" and job["gpus"] == 2 and job["time_limit_s"] == 1800
    assert job["project"] == "aurora-vision"

    page = alice.get(f"/portal/jobs/{ref}")
    assert page.status_code == 200
    text = page.text
    assert f"Submitted job {ref}" in text  # the flash after the redirect
    assert "2 GPUs" in text and "for at most 30 min" in text and "waiting to be placed" in text
    assert 'aria-live="polite"' in text
    assert "--qos=high accepted but not acted on" in text  # the warning stays on the job
    assert "<code>--output</code></dt><dd>train-%j.log" in text  # an option honoured
    assert "#SBATCH --gpus=2\n#SBATCH" in text and "\r" not in text  # the script, as text
    assert f'action="/portal/jobs/{ref}/cancel"' in text
    assert "jobs.js" in text and "<script>" not in text  # no inline script (CSP)

    h.cycle(rounds=2)
    summary = alice.get(f"/portal/jobs/{ref}/summary")
    assert summary.status_code == 200 and "running" in summary.text
    assert str(_api_job(h, ref)["partition_id"]) in summary.text  # placement


def test_an_uploaded_script_and_the_fields_win_over_its_lines(h: Harness) -> None:
    bob = portal(h, "bob")
    answer = bob.post(
        "/portal/submit",
        data={"project": "aurora-vision", "gpus": "1", "csrf": csrf(bob, "/portal/submit")},
        files={"script_file": ("job.sh", SCRIPT.encode(), "text/x-sh")},
    )
    assert answer.status_code == 303, answer.text
    ref = answer.headers["location"].rsplit("/", 1)[1]
    job = _api_job(h, ref, "bob")
    assert job["gpus"] == 1 and job["name"] == "train-vision"


def test_a_refused_directive_is_shown_next_to_the_script_with_the_values_kept(
    h: Harness,
) -> None:
    alice = portal(h, "alice")
    script = "#!/bin/bash\n#SBATCH --gpus=1\n#SBATCH --burst-buffer=x\necho hi\n"
    data = {"project": "aurora-vision", "script": script, "time": "10"}
    answer = alice.post("/portal/submit", data={**data, "csrf": csrf(alice, "/portal/submit")})
    assert answer.status_code == 422
    assert 'id="script-error"' in answer.text
    assert "line 3: unsupported option --burst-buffer" in answer.text
    assert 'aria-invalid="true" aria-describedby="script-error"' in answer.text
    assert "#SBATCH --burst-buffer=x" in answer.text  # the script is kept in the form
    assert 'value="10"' in answer.text  # and the time limit

    unknown = {"project": "aurora-vision", "command": "echo", "gpus": "1", "time": "10"}
    unknown["partition"] = "nowhere"
    answer = alice.post("/portal/submit", data={**unknown, "csrf": csrf(alice, "/portal/submit")})
    assert answer.status_code == 422 and 'id="partition-error"' in answer.text
    assert "no site has a partition" in answer.text and "known partitions" in answer.text

    answer = alice.post(
        "/portal/submit",
        data={"project": "aurora-vision", "csrf": csrf(alice, "/portal/submit")},
    )
    assert answer.status_code == 422 and "give a batch script" in answer.text
    assert h.client("alice").get("/jobs").json() == []  # nothing was submitted


def test_a_budget_refusal_is_said_in_words(h: Harness) -> None:
    fabien = portal(h, "fabien")  # climat-downscale: 1,000 GPU-hours
    data = {"project": "climat-downscale", "command": "big", "gpus": "8", "time": "7-00:00:00"}
    answer = fabien.post("/portal/submit", data={**data, "csrf": csrf(fabien, "/portal/submit")})
    assert answer.status_code == 409, answer.text
    assert "The job was refused" in answer.text and "GPU-hours" in answer.text
    assert 'value="7-00:00:00"' in answer.text


def test_forms_without_the_csrf_token_change_nothing(h: Harness) -> None:
    alice = portal(h, "alice")
    answer = alice.post("/portal/submit", data={"project": "aurora-vision", "command": "x"})
    assert answer.status_code == 403
    assert h.client("alice").get("/jobs").json() == []
    ref = _submit(alice, command="sleep", gpus="1", time="10")
    assert alice.post(f"/portal/jobs/{ref}/cancel").status_code == 403
    assert _api_job(h, ref)["state"] == "pending"


def test_the_list_filters_pages_and_refreshes_while_jobs_are_live(h: Harness) -> None:
    alice, bob = portal(h, "alice"), portal(h, "bob")
    first = _submit(alice, command="one", gpus="1", time="10")
    second = _submit(bob, command="two", gpus="1", time="10")
    alice.post(f"/portal/jobs/{first}/cancel", data={"csrf": csrf(alice)})

    page = alice.get("/portal/jobs")
    assert page.status_code == 200
    text = page.text
    assert text.index(f">{second}</a>") < text.index(f">{first}</a>")  # newest first
    assert "2 jobs, newest first" in text and 'scope="col"' in text and "<caption>" in text
    assert 'data-live="1"' in text and 'aria-live="polite"' in text
    assert "1 pending, 1 cancelled." in text

    pending = alice.get("/portal/jobs?state=pending").text
    assert f">{second}</a>" in pending and f">{first}</a>" not in pending
    ended = alice.get("/portal/jobs/rows?state=cancelled")
    assert ended.status_code == 200 and ended.text.lstrip().startswith("<tbody")
    assert 'data-live="0"' in ended.text and f">{first}</a>" in ended.text
    assert "<html" not in ended.text  # a fragment, not a page

    chosen = alice.get("/portal/jobs?project=aurora-vision&state=pending")
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/portal/projects/aurora-vision/jobs?state=pending"
    project = alice.get("/portal/projects/aurora-vision/jobs")
    assert project.status_code == 200 and f">{second}</a>" in project.text

    for n in range(3):
        _submit(alice, command=f"more{n}", gpus="1", time="10")
    assert alice.get("/portal/jobs/rows?page=2").text.count("<tr>") == 0  # 5 < 50 a page
    assert alice.get("/portal/jobs?state=bogus").status_code == 422


def test_another_projects_member_reaches_none_of_it(h: Harness) -> None:
    alice = portal(h, "alice")
    ref, site, site_job_id = _running(h, alice)
    site.write_output(site_job_id, b"private results\n")
    h.cycle()

    carol = portal(h, "carol")  # PI of kalevala-mri
    mine = carol.get("/portal/jobs")
    assert mine.status_code == 200 and f'href="/portal/jobs/{ref}"' not in mine.text
    token = csrf(carol)
    for path in (
        f"/portal/jobs/{ref}",
        f"/portal/jobs/{ref}/summary",
        f"/portal/jobs/{ref}/output?offset=0",
        f"/portal/jobs/{ref}/output/download",
        "/portal/projects/aurora-vision/jobs",
        "/portal/jobs/rows?project=aurora-vision",
    ):
        answer = carol.get(path)
        assert answer.status_code == 404, path
        assert "private" not in answer.text, path
    cancel = carol.post(f"/portal/jobs/{ref}/cancel", data={"csrf": token})
    assert cancel.status_code == 404
    assert _api_job(h, ref)["state"] == "running"
    answer = carol.post(
        "/portal/submit",
        data={"project": "aurora-vision", "command": "x", "gpus": "1", "time": "5", "csrf": token},
    )
    assert answer.status_code == 404 and "not a member" in answer.text

    oscar = portal(h, "oscar")  # programme operator: sees the job, not what it printed
    page = oscar.get(f"/portal/jobs/{ref}")
    assert page.status_code == 200 and "Only members of project aurora-vision" in page.text
    assert "private" not in page.text
    assert oscar.get(f"/portal/jobs/{ref}/output?offset=0").status_code == 403

    stranger = browser(h)
    assert stranger.get(f"/portal/jobs/{ref}").status_code == 303  # to the login page


def test_cancel_by_the_owner_or_the_pi_and_not_by_another_member(h: Harness) -> None:
    alice, bob = portal(h, "alice"), portal(h, "bob")
    alices = _submit(alice, command="a", gpus="1", time="10")
    bobs = _submit(bob, command="b", gpus="1", time="10")
    owned = _submit(bob, command="c", gpus="1", time="10")

    assert 'class="danger"' not in bob.get(f"/portal/jobs/{alices}").text  # no button
    refused = bob.post(f"/portal/jobs/{alices}/cancel", data={"csrf": csrf(bob)})
    assert refused.status_code == 303
    page = bob.get(refused.headers["location"])
    assert "only its owner or the project&#39;s PI can cancel it" in page.text
    assert _api_job(h, alices)["state"] == "pending"

    done = bob.post(f"/portal/jobs/{owned}/cancel", data={"csrf": csrf(bob)})  # the owner
    assert done.status_code == 303 and done.headers["location"] == f"/portal/jobs/{owned}"
    assert f"Job {owned} is cancelled." in bob.get(done.headers["location"]).text
    assert alice.post(f"/portal/jobs/{bobs}/cancel", data={"csrf": csrf(alice)}).status_code == 303
    assert _api_job(h, owned)["state"] == _api_job(h, bobs)["state"] == "cancelled"


def test_the_output_is_shown_followed_and_downloaded(h: Harness) -> None:
    bob = portal(h, "bob")
    ref, site, site_job_id = _running(h, bob)
    page = bob.get(f"/portal/jobs/{ref}").text
    assert "has written no standard output yet" in page
    assert f'data-src="/portal/jobs/{ref}/output?stream=output"' in page

    site.write_output(site_job_id, b"epoch 1 <b>loss</b>\n")
    h.cycle()  # the broker keeps the path the site reports
    page = bob.get(f"/portal/jobs/{ref}").text
    assert "epoch 1 &lt;b&gt;loss&lt;/b&gt;" in page  # escaped, never markup
    offset = int(re.search(r'id="log-output"[^>]*data-offset="(\d+)"', page).group(1))  # type: ignore[union-attr]
    assert offset == len(b"epoch 1 <b>loss</b>\n")

    site.write_output(site_job_id, b"epoch 2\n")
    more = bob.get(f"/portal/jobs/{ref}/output?stream=output&offset={offset}")
    assert more.status_code == 200 and more.content == b"epoch 2\n"
    assert more.headers["x-job-state"] == "running" and more.headers["x-job-final"] == "0"
    assert more.headers["content-type"] == "text/plain; charset=utf-8"
    assert more.headers["x-content-type-options"] == "nosniff"

    site.finish(site_job_id, elapsed_s=60)
    h.cycle()
    end = bob.get(f"/portal/jobs/{ref}/output?stream=output&offset={offset + 8}")
    assert end.content == b"" and end.headers["x-job-final"] == "1"  # jobs.js stops here

    download = portal(h, "alice").get(f"/portal/jobs/{ref}/output/download")  # the PI
    assert download.status_code == 200
    assert download.content == b"epoch 1 <b>loss</b>\nepoch 2\n"
    assert download.headers["content-disposition"] == f'attachment; filename="job-{ref}.out"'
    missing = bob.get(f"/portal/jobs/{ref}/output/download?stream=error")
    assert missing.status_code == 404 and "no separate standard error" in missing.text

    # ended longer ago than the retention (moving the clock would end the session too)
    keep = h.platform.settings.job_output_retention_s
    with h.platform.ctx.sessions() as session, session.begin():
        ended = h.clock.now() - keep - 60
        session.execute(update(JobRow).where(JobRow.id == int(ref)).values(ended_at=ended))
    gone = bob.get(f"/portal/jobs/{ref}/output?stream=output&offset=0")
    assert gone.status_code == 410 and "no longer kept" in gone.text
    assert "no longer kept" in bob.get(f"/portal/jobs/{ref}").text


def test_an_array_lists_its_tasks_and_offers_to_cancel_them_all(h: Harness) -> None:
    alice = portal(h, "alice")
    ref = _submit(alice, command="sweep", gpus="1", time="10", array="0-2")
    page = alice.get(f"/portal/jobs/{ref}")
    assert page.status_code == 200 and "Submitted job array" in page.text
    assert "3 tasks" in page.text and f'href="/portal/jobs/{ref}_1"' in page.text
    assert f'action="/portal/jobs/{ref}/cancel"' in page.text
    assert alice.get(f"/portal/jobs/{ref}_2").status_code == 200
    alice.post(f"/portal/jobs/{ref}/cancel", data={"csrf": csrf(alice)})
    states = {t["state"] for t in h.client("alice").get("/jobs").json()}
    assert states == {"cancelled"}


def test_a_separate_error_log_has_its_own_panel_and_one_without_none(h: Harness) -> None:
    alice = portal(h, "alice")
    ref = _submit(alice, command="train", gpus="1", time="60", options="--error=err-%j.log")
    h.cycle(rounds=2)
    job = _api_job(h, ref)
    site = h.executors[SiteId(str(job["site_id"]))]
    assert isinstance(site, MockExecutor)
    waiting = alice.get(f"/portal/jobs/{ref}").text
    assert 'id="h-error"' in waiting and "has written no standard error yet" in waiting
    site.write_output(str(job["site_job_id"]), b"warning: lr too high\n", stream="error")
    h.cycle()
    assert "warning: lr too high" in alice.get(f"/portal/jobs/{ref}").text
    follow = alice.get(f"/portal/jobs/{ref}/output?stream=error&offset=9")
    assert follow.content == b"lr too high\n"

    plain = _submit(alice, command="other", gpus="1", time="60")
    assert 'id="h-error"' not in alice.get(f"/portal/jobs/{plain}").text
