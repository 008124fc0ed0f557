"""A Slurm job's output paths and reading them back (slurm/output.py), at real local sites:
through the CLI back-end (locally and over ssh) and through slurmrestd."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aifactories.domain.batch import BatchOptions
from aifactories.domain.jobs import JobState
from aifactories.executors._output import OutputRefused
from aifactories.executors.base import Executor, SubmitRequest
from aifactories.executors.slurm.cli import SlurmCliExecutor
from aifactories.executors.slurm.rest import SlurmRestExecutor
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.localslurm.install import JOB_USER
from tests.slurm.test_cli_executor import _FAKE_SSH, final, request, site_of, slurm, wait_for
from tests.slurm.test_rest_executor import _executor as rest_executor

WRITER = (
    "#!/bin/bash\n"
    "#SBATCH --output=ignored-by-the-site.out\n"
    "\n"
    "echo first line\n"
    "echo to stderr >&2\n"
    "printf 'x%.0s' $(seq 1 5000)\n"
    "echo\n"
    "echo last line\n"
)


@pytest.fixture
def workdir(slurm_sites: list[SiteLayout]) -> Iterator[Path]:
    """A fresh folder in the sites' job folder: REST jobs run as another user, who cannot
    enter pytest's own temporary folders."""
    folder = Path(tempfile.mkdtemp(prefix="out-", dir=slurm_sites[0].output_dir))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def with_output(req: SubmitRequest, workdir: Path, script: str, **batch: str) -> SubmitRequest:
    spec = replace(
        req.spec,
        name="writer",
        script=script,
        workdir=str(workdir),
        batch=BatchOptions(**batch),  # type: ignore[arg-type]
    )
    return replace(req, spec=spec)


@pytest.fixture
def cli(slurm_sites: list[SiteLayout], workdir: Path) -> SlurmCliExecutor:
    layout = slurm_sites[0]
    return SlurmCliExecutor(site_of(layout), str(layout.slurm_conf), output_dir=str(workdir))


@pytest.fixture
def rest(slurm_sites: list[SiteLayout]) -> Iterator[SlurmRestExecutor]:
    executor = rest_executor(slurm_sites[1])
    yield executor
    executor.close()


def _run(executor: Executor, req: SubmitRequest) -> tuple[str, str, str | None]:
    site_job_id = executor.submit(req)
    done = wait_for(executor, site_job_id, final)
    assert done.state is JobState.COMPLETED, done
    assert done.output_path is not None
    return site_job_id, done.output_path, done.error_path


def _read_all(executor: Executor, site_job_id: str, path: str | None, stream: str) -> bytes:
    chunk = executor.read_output(site_job_id, stream, 0, 1 << 20, path)  # type: ignore[arg-type]
    assert chunk is not None
    assert chunk.size == len(chunk.data)
    return chunk.data


def test_cli_paths_follow_the_users_patterns_and_read_back_in_ranges(
    slurm_cluster: LocalSlurm, slurm_sites: list[SiteLayout], cli: SlurmCliExecutor, workdir: Path
) -> None:
    req = with_output(
        request(cli.site), workdir, WRITER, output="%x-%j.out", error="errors/%x_%u-%j.err"
    )
    (workdir / "errors").mkdir(mode=0o777)
    site_job_id, out_path, err_path = _run(cli, req)
    assert out_path == f"{workdir}/writer-{site_job_id}.out"
    assert err_path == f"{workdir}/errors/writer_tester-{site_job_id}.err"
    shown = slurm(slurm_cluster, slurm_sites[0], "scontrol", "show", "job", site_job_id)
    assert f"StdOut={out_path}" in shown and f"StdErr={err_path}" in shown
    text = Path(out_path).read_bytes()
    assert text.startswith(b"first line\n") and text.endswith(b"last line\n")
    assert not (workdir / "ignored-by-the-site.out").exists()
    # while the controller knows the job, and from the path the broker kept
    assert _read_all(cli, site_job_id, None, "output") == text
    assert _read_all(cli, site_job_id, out_path, "output") == text
    assert _read_all(cli, site_job_id, None, "error") == b"to stderr\n"
    middle = cli.read_output(site_job_id, "output", 11, 100, out_path)
    assert middle is not None and middle.data == text[11:111] and middle.size == len(text)
    past = cli.read_output(site_job_id, "output", len(text) + 5, 100, out_path)
    assert past is not None and past.data == b"" and past.size == len(text)
    assert cli.read_output(site_job_id, "output", 0, 10, f"{workdir}/nothing.out") is None


def test_cli_default_output_has_no_separate_error_file(
    cli: SlurmCliExecutor, workdir: Path
) -> None:
    req = with_output(request(cli.site), workdir, WRITER)
    site_job_id, out_path, err_path = _run(cli, req)
    assert out_path == f"{workdir}/{req.tag}_writer-{site_job_id}.out"
    assert err_path is None
    assert cli.read_output(site_job_id, "error", 0, 100) is None
    assert b"to stderr" in _read_all(cli, site_job_id, None, "output")


def test_a_running_jobs_output_is_readable_as_it_grows(
    cli: SlurmCliExecutor, workdir: Path
) -> None:
    script = "#!/bin/bash\necho started\nsleep 300\n"
    site_job_id = cli.submit(with_output(request(cli.site), workdir, script, output="live.out"))
    try:
        running = wait_for(cli, site_job_id, lambda s: s.state is JobState.RUNNING)
        assert running.output_path == f"{workdir}/live.out"
        chunk = None
        for _ in range(50):
            chunk = cli.read_output(site_job_id, "output", 0, 100)
            if chunk is not None and chunk.data:
                break
            wait_for(cli, site_job_id, lambda s: True, timeout_s=1)
        assert chunk is not None and chunk.data == b"started\n"
    finally:
        cli.cancel(site_job_id)


def test_links_foreign_files_and_kernel_files_are_refused(
    rest: SlurmRestExecutor, workdir: Path
) -> None:
    """Jobs through REST run as the site's user, not as the platform (root here)."""
    script = (
        "#!/bin/bash\n"
        "echo mine > own.out\n"
        "ln -s /etc/hostname link.out\n"
        "ln -s /etc linkdir\n"
        "mkfifo pipe.out\n"
    )
    req = with_output(request(rest.site), workdir, script, output="job.out")
    site_job_id, _out, _err = _run(rest, req)
    assert (workdir / "own.out").owner() == JOB_USER
    assert _read_all(rest, site_job_id, f"{workdir}/own.out", "output") == b"mine\n"
    for path, why in [
        (f"{workdir}/link.out", "symbolic link"),
        (f"{workdir}/linkdir/hostname", "symbolic link"),
        (f"{workdir}/pipe.out", "not a regular file"),
        ("/proc/self/environ", "not a file a job writes"),
        (f"{workdir}{'/..' * len(workdir.parts)}/proc/1/environ", "not a file a job writes"),
        ("relative.out", "not absolute"),
    ]:
        with pytest.raises(OutputRefused, match=why):
            rest.read_output(site_job_id, "output", 0, 100, path)
    foreign = workdir / "root.out"
    foreign.write_text("the platform's secret\n")  # root's, in the job's own folder
    with pytest.raises(OutputRefused, match="does not belong"):
        rest.read_output(site_job_id, "output", 0, 100, str(foreign))
    os.link(foreign, workdir / "hardlink.out")  # a hard link keeps the owner
    with pytest.raises(OutputRefused, match="does not belong"):
        rest.read_output(site_job_id, "output", 0, 100, str(workdir / "hardlink.out"))


def test_rest_reports_and_reads_the_same_paths(rest: SlurmRestExecutor, workdir: Path) -> None:
    req = with_output(request(rest.site), workdir, WRITER, output="r-%x-%j.out", error="r-%j.err")
    site_job_id, out_path, err_path = _run(rest, req)
    assert out_path == f"{workdir}/r-writer-{site_job_id}.out"
    assert err_path == f"{workdir}/r-{site_job_id}.err"
    assert _read_all(rest, site_job_id, None, "output").endswith(b"last line\n")
    assert _read_all(rest, site_job_id, err_path, "error") == b"to stderr\n"
    found = rest.find_by_tag(req.tag)
    assert found is not None and found.output_path == out_path


def test_over_ssh_the_same_checks_run_on_the_login_node(
    slurm_sites: list[SiteLayout], workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(_FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    layout = slurm_sites[2]
    executor = SlurmCliExecutor(
        site_of(layout), str(layout.slurm_conf), output_dir=str(workdir), ssh_host="login"
    )
    script = WRITER + "ln -s /etc/hostname link.out\n"
    req = with_output(request(executor.site), workdir, script, output="it's %x-%j.out")
    site_job_id, out_path, _err = _run(executor, req)
    assert out_path == f"{workdir}/it's writer-{site_job_id}.out"
    text = Path(out_path).read_bytes()
    assert _read_all(executor, site_job_id, None, "output") == text
    tail = executor.read_output(site_job_id, "output", len(text) - 10, 4, out_path)
    assert tail is not None and tail.data == text[-10:-6] and tail.size == len(text)
    assert executor.read_output(site_job_id, "output", 0, 4, f"{workdir}/none.out") is None
    with pytest.raises(OutputRefused, match="symbolic link"):
        executor.read_output(site_job_id, "output", 0, 4, f"{workdir}/link.out")
    foreign = workdir / "someone-else.out"
    foreign.write_text("not yours\n")
    os.chown(foreign, 65534, 65534)  # nobody's, not the ssh user's who submitted
    with pytest.raises(OutputRefused, match="does not belong"):
        executor.read_output(site_job_id, "output", 0, 4, str(foreign))
