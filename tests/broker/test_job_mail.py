"""``--mail-type``/``--mail-user``: the broker puts one e-mail in the notification outbox when a
job that asked for it begins, ends, fails or is requeued, in the transaction of the change;
the delivery worker sends it. Through the service and the broker on mock sites, SQLite and
PostgreSQL; the message rules themselves as plain functions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from aifactories.broker.job_mail import (
    JobFacts,
    began_mail,
    end_kind,
    ended_mail,
    failing,
    words,
)
from aifactories.db.models import JobRow
from aifactories.db.programme_models import NotificationRow
from aifactories.domain.ids import SiteId
from aifactories.domain.jobs import JobState
from aifactories.executors.mock import MockExecutor
from aifactories.services.core.auth import authenticate
from aifactories.services.jobs.job_queries import get_job
from aifactories.services.jobs.jobs import JobRequest, submit_job
from aifactories.services.notifications.notify_delivery import deliver_pending
from tests.broker.mock_platform import MockPlatform, mock_platform
from tests.programme_services.smtp_sink import SmtpSink

CAROL = "carol@example.eu"  # the demo's address for carol, the owner of the jobs below


@pytest.fixture
def mp(tmp_path: Path, database_url: str) -> Iterator[MockPlatform]:
    platform = mock_platform(tmp_path, database_url)
    yield platform
    platform.platform.stop()


def _submit(mp: MockPlatform, *options: str, name: str = "train") -> JobRow:
    principal = authenticate(mp.platform.ctx, mp.tokens["carol"])
    request = JobRequest(
        project="kalevala-mri",
        gpus=1,
        time_limit="1:00:00",
        command=["x"],
        name=name,
        options=list(options),
    )
    return submit_job(mp.platform.ctx, principal, request)


def _job(mp: MockPlatform, ref: str) -> JobRow:
    return get_job(mp.platform.ctx, authenticate(mp.platform.ctx, mp.tokens["carol"]), ref)


def _site(mp: MockPlatform, row: JobRow) -> MockExecutor:
    assert row.site_id is not None and row.site_job_id is not None, row.state
    site = mp.executors[SiteId(row.site_id)]
    assert isinstance(site, MockExecutor)
    return site


def _end(mp: MockPlatform, ref: str, state: JobState = JobState.COMPLETED, code: int = 0) -> None:
    row = _job(mp, ref)
    assert row.site_job_id is not None
    _site(mp, row).finish(row.site_job_id, state, exit_code=code)


def _mails(mp: MockPlatform) -> list[NotificationRow]:
    with mp.platform.ctx.reads() as session:
        return list(session.scalars(select(NotificationRow).order_by(NotificationRow.id)))


def _run_to_running(mp: MockPlatform) -> None:
    mp.platform.broker.run_once()  # placed and sent to the mock site, which starts it
    mp.platform.broker.run_once()  # the broker sees it running


def test_a_job_with_mail_type_all_is_mailed_when_it_begins_and_ends(mp: MockPlatform) -> None:
    job = _submit(mp, "--mail-type=ALL")
    mp.clock.advance(62)  # queued 1 min 2 s before the broker places it
    _run_to_running(mp)
    mails = _mails(mp)
    assert [m.event for m in mails] == ["job.began"]
    began = mails[0]
    partition = _job(mp, str(job.id)).partition_id
    assert began.subject == (
        f"aifactories job {job.id} (train) began at {partition}, queued 1 min 2 s"
    )
    assert (began.channel, began.recipient, began.status) == ("email", CAROL, "pending")
    assert "kalevala-mri" in began.body and "queued 1 min 2 s" in began.body
    mp.clock.advance(1800)
    _end(mp, str(job.id))
    mp.platform.broker.run_once()
    mp.platform.broker.run_once()  # a second look at the same end mails nothing more
    mails = _mails(mp)
    assert [m.event for m in mails] == ["job.began", "job.ended"]
    ended = mails[1]
    assert re.fullmatch(
        rf"aifactories job {job.id} \(train\) ended: completed, exit code 0, "
        r"\d+\.\d\d GPU-hours charged",
        ended.subject,
    ), ended.subject
    assert "run time 00:30:00" in ended.body
    assert ended.payload["job"] == str(job.id) and ended.payload["mail_type"] == "END"


def test_a_failed_job_gets_one_fail_message_not_end_and_fail(mp: MockPlatform) -> None:
    job = _submit(mp, "--mail-type=ALL")
    _run_to_running(mp)
    _end(mp, str(job.id), JobState.FAILED, code=1)
    mp.platform.broker.run_once()
    mails = _mails(mp)
    assert [m.event for m in mails] == ["job.began", "job.failed"]
    assert mails[1].subject == f"aifactories job {job.id} (train) failed: exit code 1"


def test_only_the_asked_types_go_to_the_mail_user(mp: MockPlatform) -> None:
    quiet = _submit(mp)  # no --mail-type: nothing, whatever happens
    end_only = _submit(mp, "--mail-type=END", "--mail-user=lab@example.org")
    fail_only = _submit(mp, "--mail-type=FAIL")
    _run_to_running(mp)
    for job in (quiet, end_only, fail_only):
        _end(mp, str(job.id))
    mp.platform.broker.run_once()
    mails = _mails(mp)
    assert [(m.event, m.recipient) for m in mails] == [("job.ended", "lab@example.org")]
    assert str(end_only.id) in mails[0].subject
    # a job's mail is its owner's to read, wherever it went
    assert mails[0].user_id == end_only.user_id


def test_a_job_that_started_and_ended_between_two_looks_is_mailed_begin_then_end(
    mp: MockPlatform,
) -> None:
    job = _submit(mp, "--mail-type=BEGIN,END")
    mp.platform.broker.run_once()  # at the site, running there; the broker has not looked yet
    mp.clock.advance(60)
    _end(mp, str(job.id))
    mp.platform.broker.run_once()
    assert [m.event for m in _mails(mp)] == ["job.began", "job.ended"]


def test_a_job_array_is_mailed_as_a_whole(mp: MockPlatform) -> None:
    first = _submit(mp, "--mail-type=ALL", "--array=0-2", name="sweep")
    array = first.id
    _run_to_running(mp)
    assert {_job(mp, f"{array}_{i}").state for i in range(3)} == {"running"}
    mails = _mails(mp)
    assert [m.event for m in mails] == ["job.began"]  # one for the array, not one per task
    assert mails[0].subject.startswith(f"aifactories job array {array} (sweep) began: task ")
    _end(mp, f"{array}_0")
    _end(mp, f"{array}_1", JobState.FAILED, code=3)
    mp.platform.broker.run_once()
    assert len(_mails(mp)) == 1  # task 2 still runs: the array has not ended
    _end(mp, f"{array}_2")
    mp.platform.broker.run_once()
    mails = _mails(mp)
    assert [m.event for m in mails] == ["job.began", "job.failed"]
    assert mails[1].subject == (
        f"aifactories job array {array} (sweep) failed: 1 of 3 tasks failed (exit codes 3)"
    )
    assert all(f"{array}_{i}" in mails[1].body for i in range(3))


def test_a_job_whose_dependency_can_never_be_met_is_mailed_as_failed(mp: MockPlatform) -> None:
    first = _submit(mp)
    after_ok = _submit(mp, f"--dependency=afterok:{first.id}", "--mail-type=FAIL")
    _run_to_running(mp)
    _end(mp, str(first.id), JobState.FAILED, code=1)
    mp.platform.broker.run_once()  # sees the first job fail
    mp.platform.broker.run_once()  # cancels its dependent
    assert _job(mp, str(after_ok.id)).state == "cancelled"
    mails = _mails(mp)
    assert [m.event for m in mails] == ["job.failed"]
    assert mails[0].subject.startswith(
        f"aifactories job {after_ok.id} (train) failed: cancelled, DependencyNeverSatisfied"
    )


def test_a_job_its_site_requeues_is_mailed_requeue(mp: MockPlatform) -> None:
    job = _submit(mp, "--mail-type=REQUEUE")
    _run_to_running(mp)
    row = _job(mp, str(job.id))
    site = _site(mp, row)
    assert row.site_job_id is not None
    mock_job = site.jobs[row.site_job_id]  # a node failed: the site put the job back
    mock_job.status = replace(mock_job.status, state=JobState.PENDING, reason="node failure")
    mp.platform.broker.run_once()
    mails = _mails(mp)
    assert [m.event for m in mails] == ["job.requeued"]
    assert mails[0].subject == f"aifactories job {job.id} (train) requeued: node failure"
    assert row.partition_id is not None and row.partition_id.split("/")[0] in mails[0].body


def test_the_delivery_worker_sends_job_mail_over_smtp(mp: MockPlatform) -> None:
    sink = SmtpSink().start()
    try:
        job = _submit(mp, "--mail-type=END", "--mail-user=lab@example.org")
        _run_to_running(mp)
        _end(mp, str(job.id))
        mp.platform.broker.run_once()
        ctx = mp.platform.ctx
        settings = ctx.settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": sink.port}
        )
        report = deliver_pending(replace(ctx, settings=settings))
        assert (report.sent, report.errors) == (1, [])
        [message] = sink.messages
        assert message["To"] == "lab@example.org"
        assert message["Subject"].startswith(f"aifactories job {job.id} (train) ended")
        assert message["X-Aif-Event"] == "job.ended"
        assert [m.status for m in _mails(mp)] == ["sent"]
    finally:
        sink.stop()


# -- the message rules, as plain functions ---------------------------------------------------


@pytest.mark.parametrize(
    ("state", "reason", "wanted", "kind"),
    [
        ("completed", None, {"END", "FAIL"}, "END"),
        ("failed", "exit code 1", {"END", "FAIL"}, "FAIL"),
        ("failed", "exit code 1", {"END"}, "END"),  # Slurm: END when FAIL was not asked for
        ("timeout", None, {"FAIL"}, "FAIL"),
        ("completed", None, {"FAIL"}, None),
        ("cancelled", "cancelled by the user", {"FAIL"}, None),
        (
            "cancelled",
            "DependencyNeverSatisfied: afterok:12 can no longer be met",
            {"FAIL"},
            "FAIL",
        ),
        ("cancelled", None, {"BEGIN"}, None),
    ],
)
def test_the_end_message_is_one_of_end_or_fail(
    state: str, reason: str | None, wanted: set[str], kind: str | None
) -> None:
    assert end_kind(frozenset(wanted), failing(state, reason)) == kind  # type: ignore[arg-type]


def test_durations_and_subjects_read_like_sentences() -> None:
    assert [words(s) for s in (0, 62, 3600 + 300 + 7, 2 * 86400 + 4 * 3600)] == [
        "0 s",
        "1 min 2 s",
        "1 h 5 min",
        "2 d 4 h",
    ]
    job = JobFacts(
        label="123",
        name="train",
        project="kalevala-mri",
        state="running",
        partition="lumi-aif/lumi-g",
        submitted_at=1000.0,
        started_at=1062.0,
    )
    assert began_mail(job).subject == (
        "aifactories job 123 (train) began at lumi-aif/lumi-g, queued 1 min 2 s"
    )
    done = replace(job, state="completed", ended_at=1062.0 + 3600, exit_code=0)
    done = replace(done, charged_gpu_seconds=9000)
    assert ended_mail(done, "END").subject == (
        "aifactories job 123 (train) ended: completed, exit code 0, 2.50 GPU-hours charged"
    )
    timed_out = replace(done, state="timeout", exit_code=None, reason="time limit reached")
    assert ended_mail(timed_out, "FAIL").subject == (
        "aifactories job 123 (train) failed: timeout, time limit reached"
    )
    body = ended_mail(done, "END").body
    assert "lumi-aif, partition lumi-g" in body and "run time 01:00:00" in body


def test_a_pending_job_its_owner_cancels_is_mailed_once_as_ended(mp: MockPlatform) -> None:
    from aifactories.services.jobs.job_queries import cancel_job

    job = _submit(mp, "--mail-type=END")
    cancel_job(mp.platform.ctx, authenticate(mp.platform.ctx, mp.tokens["carol"]), str(job.id))
    mails = _mails(mp)
    assert len(mails) == 1 and mails[0].recipient == CAROL
    assert "cancelled" in mails[0].subject
    cancel_job(mp.platform.ctx, authenticate(mp.platform.ctx, mp.tokens["carol"]), str(job.id))
    assert len(_mails(mp)) == 1  # cancelling an ended job again sends nothing
