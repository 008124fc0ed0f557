"""Reading a job's output safely (executors/_output.py): the path is a hostile member's
choice and the job runs in the folder the file lands in. Links planted to the platform's
database, to /etc/shadow or to another project's files, ``..`` out of the job's folders,
FIFOs and files of another user must give nothing; a growing file is read as it grows.

First on folders made by hand (every refusal, fast), then with real jobs through the real
emulated executor, in each isolation this machine has, that plant the links themselves."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aifactories.domain.clock import ManualClock, SystemClock
from aifactories.domain.jobs import JobState
from aifactories.executors._output import (
    JobFolders,
    OutputRefused,
    job_folders,
    read_output_file,
)
from aifactories.executors._output_sweep import sweep
from aifactories.executors._sitestate import SiteFiles
from aifactories.executors.emulated import EmulatedExecutor
from aifactories.executors.isolation import probe_bwrap, resolve_isolation

from .conftest import FAST, SITE, one, request, wait_for

ROOT = os.geteuid() == 0
BWRAP = shutil.which("bwrap")
SANDBOX = BWRAP is not None and probe_bwrap(BWRAP, ROOT) is None


# --------------------------------------------------------------------- folders by hand


class Layout:
    """A data folder with a secret database, a job directory (platform's output.log), the
    job's own folder and a working folder beside it."""

    def __init__(self, base: Path) -> None:
        self.secret = f"secret-{secrets.token_hex(8)}"
        self.data = base / "data"
        self.data.mkdir()
        self.db = self.data / "aif.db"
        self.db.write_text(self.secret)
        self.job_dir = self.data / "sites" / "s" / "jobs" / "7"
        self.work = self.job_dir / "work"
        self.work.mkdir(parents=True)
        (self.job_dir / "output.log").write_bytes(b"platform-written\n")
        self.workdir = base / "project"
        self.workdir.mkdir()
        self.outside = base / "elsewhere.txt"
        self.outside.write_text(self.secret)

    def folders(self, owner_uid: int | None = None) -> JobFolders:
        return JobFolders(
            self.job_dir,
            work=(self.work, Path(os.path.realpath(self.work))),
            workdir=(self.workdir, Path(os.path.realpath(self.workdir))),
            owner_uid=owner_uid,
        )

    def read(self, path: Path | str, owner_uid: int | None = None, offset: int = 0) -> bytes:
        chunk = read_output_file(
            str(path),
            self.folders(owner_uid),
            offset,
            1 << 20,
            protected=(self.data,),
            hidden_files=(self.workdir / "catalogue.yaml",),
        )
        assert chunk is not None, f"{path} was not found"
        return chunk.data


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


def test_the_jobs_own_files_and_the_platform_output_are_read(layout: Layout) -> None:
    (layout.work / "train.out").write_bytes(b"epoch 1\n")
    (layout.workdir / "slurm-7.out").write_bytes(b"from the workdir\n")
    assert layout.read(layout.work / "train.out") == b"epoch 1\n"
    assert layout.read(layout.workdir / "slurm-7.out") == b"from the workdir\n"
    assert layout.read(layout.job_dir / "output.log") == b"platform-written\n"
    # written with '..' that stays inside: lexical, and the walk then refuses any link
    assert layout.read(f"{layout.work}/sub/../train.out") == b"epoch 1\n"


def test_a_missing_file_is_none_not_an_error(layout: Layout) -> None:
    folders = layout.folders()
    assert read_output_file(str(layout.work / "not-yet.out"), folders, 0, 10) is None
    assert read_output_file(str(layout.work / "no" / "dir.out"), folders, 0, 10) is None


@pytest.mark.parametrize(
    "planted",
    ["database", "shadow", "dir-link", "dotdot", "outside", "hidden", "data-via-workdir"],
)
def test_planted_paths_leak_nothing(layout: Layout, planted: str) -> None:
    if planted == "database":  # a link in the job's own folder to the platform's database
        (layout.work / "out.txt").symlink_to(layout.db)
        path = layout.work / "out.txt"
    elif planted == "shadow":
        (layout.work / "out.txt").symlink_to("/etc/shadow")
        path = layout.work / "out.txt"
    elif planted == "dir-link":  # a folder of the path is a link to the data folder
        (layout.work / "logs").symlink_to(layout.data)
        path = layout.work / "logs" / "aif.db"
    elif planted == "dotdot":  # --output=../../../../aif.db
        path = Path(f"{layout.work}/../../../../aif.db")
    elif planted == "outside":
        path = layout.outside
    elif planted == "hidden":  # the catalogue (or SQLite file) in the working folder
        (layout.workdir / "catalogue.yaml").write_text(layout.secret)
        path = layout.workdir / "catalogue.yaml"
    else:  # the workdir's link to the data folder
        (layout.workdir / "data").symlink_to(layout.data)
        path = layout.workdir / "data" / "aif.db"
    with pytest.raises(OutputRefused) as refused:
        layout.read(path)
    assert layout.secret not in str(refused.value)


def test_a_link_in_place_of_the_platform_output_is_refused(layout: Layout) -> None:
    output = layout.job_dir / "output.log"
    output.unlink()
    output.symlink_to(layout.db)
    with pytest.raises(OutputRefused, match="symbolic link"):
        layout.read(output)


def test_a_fifo_is_refused_without_blocking(layout: Layout) -> None:
    os.mkfifo(layout.work / "out.fifo")  # nobody writes: a blocking open would hang forever
    with pytest.raises(OutputRefused, match="not a regular file"):
        layout.read(layout.work / "out.fifo")


@pytest.mark.skipif(not ROOT, reason="files of other users need root")
def test_as_root_only_files_of_the_jobs_user_are_read(layout: Layout) -> None:
    job_uid = 1_950_999_001
    hard = layout.work / "hard.out"
    os.link(layout.db, hard)  # a hard link keeps the owner of the file it names (root)
    with pytest.raises(OutputRefused, match="does not belong"):
        layout.read(hard, owner_uid=job_uid)
    mine = layout.work / "mine.out"
    mine.write_bytes(b"ok\n")
    os.chown(mine, job_uid, job_uid)
    assert layout.read(mine, owner_uid=job_uid) == b"ok\n"
    # the platform's own output.log is the platform's, whoever ran the job
    assert layout.read(layout.job_dir / "output.log", owner_uid=job_uid) == b"platform-written\n"


def test_a_growing_file_is_read_from_an_offset(layout: Layout) -> None:
    path = layout.work / "grow.out"
    folders = layout.folders()
    with open(path, "wb", buffering=0) as out:
        out.write(b"line 1\n")
        first = read_output_file(str(path), folders, 0, 100)
        assert first is not None and first.data == b"line 1\n" and first.size == 7
        out.write(b"line 2\n")
        second = read_output_file(str(path), folders, first.offset + len(first.data), 100)
        assert second is not None and second.data == b"line 2\n" and second.size == 14
    beyond = read_output_file(str(path), folders, 100, 10)
    assert beyond is not None and beyond.data == b"" and beyond.size == 14
    limited = read_output_file(str(path), folders, 2, 3)
    assert limited is not None and limited.data == b"ne "


# --------------------------------------------------------------------------- real jobs

MODES = [
    pytest.param("sandbox", marks=pytest.mark.skipif(not SANDBOX, reason="no usable bwrap")),
    pytest.param("user", marks=pytest.mark.skipif(not ROOT, reason="needs root")),
]


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """Under /tmp, traversable by a job user (pytest's folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="aif-output-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


MakeSite = Callable[[str], EmulatedExecutor]


@pytest.fixture
def make_site(open_folder: Path) -> Iterator[MakeSite]:
    made: list[EmulatedExecutor] = []
    data = open_folder / "data"
    data.mkdir(mode=0o700)

    def make(mode: str) -> EmulatedExecutor:
        isolation = resolve_isolation(
            mode,
            protected=(data,),
            hidden_files=(data / "aif.db",),
            users_file=data / "sites" / "job-users.json",
            scratch_dir=open_folder / "scratch",
        )
        site = EmulatedExecutor(
            SITE, data / "sites" / SITE.id, SystemClock(), FAST, kill_grace_s=0.5,
            isolation=isolation,
        )  # fmt: skip
        made.append(site)
        return site

    yield make
    for site in made:
        for entry in (site.state_dir / "jobs").iterdir():
            site.cancel(entry.name)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_links_a_real_job_plants_give_nothing(make_site: MakeSite, mode: str) -> None:
    site = make_site(mode)
    data = site.state_dir.parents[1]
    secret = f"db-{secrets.token_hex(8)}"
    (data / "aif.db").write_text(secret)
    script = (
        'ln -s "{db}" "$HOME/evil.out"; ln -s /etc/shadow "$HOME/shadow.out"; '
        'ln -s "{data}" "$HOME/logs"; echo mine > "$HOME/mine.out"; echo printed'
    ).format(db=data / "aif.db", data=data)
    job = site.submit(request(1, one(1), command=("sh", "-c", script)))
    assert wait_for(site, [job])[job].state is JobState.COMPLETED

    folders = job_folders(site.job_dir(job))
    assert folders.work is not None
    home = folders.work[0]
    for planted in ("evil.out", "shadow.out", "logs/aif.db", "../../../aif.db"):
        with pytest.raises(OutputRefused) as refused:
            site.read_output(job, "output", 0, 1 << 20, known_path=f"{home}/{planted}")
        assert secret not in str(refused.value)
    own = site.read_output(job, "output", 0, 1 << 20, known_path=f"{home}/mine.out")
    assert own is not None and own.data == b"mine\n"
    # no path reported yet: the platform's output.log, which holds what the job printed
    printed = site.read_output(job, "output", 0, 1 << 20)
    assert (
        printed is not None and b"printed" in printed.data and secret.encode() not in printed.data
    )
    assert site.read_output(job, "error", 0, 10) is None  # no file of its own


@pytest.mark.slow
def test_a_running_jobs_output_is_read_as_it_grows(make_site: MakeSite) -> None:
    site = make_site("sandbox" if SANDBOX else "user" if ROOT else "none")
    script = 'echo first; while [ ! -e "$HOME/go" ]; do sleep 0.05; done; echo second'
    job = site.submit(replace(request(1, one(1), command=("sh", "-c", script)), user="bob"))
    wait_for(site, [job], lambda s: s.state is JobState.RUNNING)
    seen = b""
    for _ in range(500):  # the shell may not have written the line yet
        chunk = site.read_output(job, "output", 0, 1 << 20)
        seen = b"" if chunk is None else chunk.data
        if b"first" in seen:
            break
        time.sleep(0.02)
    assert seen == b"first\n"
    folders = job_folders(site.job_dir(job))
    assert folders.work is not None
    go = folders.work[1] / "go"
    go.touch()
    wait_for(site, [job])
    rest = site.read_output(job, "output", len(seen), 1 << 20)
    assert rest is not None and rest.data.endswith(b"second\n") and rest.offset == len(seen)


# ---------------------------------------------------------------------- the retention


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_jobs_past_the_retention_lose_their_folders_and_nothing_else(
    open_folder: Path, mode: str
) -> None:
    data = open_folder / "data"
    data.mkdir(mode=0o700)
    keep = open_folder / "keep"  # a folder of someone else, which a job links to
    keep.mkdir()
    (keep / "precious.txt").write_text("stays")
    isolation = resolve_isolation(
        mode,
        protected=(data,),
        users_file=data / "sites" / "job-users.json",
        scratch_dir=open_folder / "scratch",
    )
    clock = ManualClock(1_000_000.0)
    site = EmulatedExecutor(
        SITE, data / "sites" / SITE.id, clock, FAST, kill_grace_s=0.5, isolation=isolation,
        output_retention_s=2 * 86400,
    )  # fmt: skip
    script = f'echo hi; ln -s "{keep}" "$HOME/link"; ln -s "{keep}/precious.txt" "$HOME/f"'
    old = [site.submit(request(i, one(1), command=("sh", "-c", script))) for i in (1, 2, 3)]
    wait_for(site, old)
    homes = {j: job_folders(site.job_dir(j)).work for j in old}
    assert all(home is not None and home[1].is_dir() for home in homes.values())

    clock.advance(86400)  # one day: kept
    recent = site.submit(request(4, one(1), command=("sh", "-c", "echo recent")))
    wait_for(site, [recent])
    assert all(site.job_dir(j).is_dir() for j in old)

    clock.advance(1.5 * 86400)  # the first three ended 2.5 days ago, the fourth 1.5 days
    site.capacity()  # any call: the sweep is due (more than an hour since the last)
    for job in old:
        home = homes[job]
        assert home is not None
        assert not site.job_dir(job).exists() and not home[1].exists()
        assert site.poll([job]) == {}  # the site forgot it
    assert site.job_dir(recent).is_dir()
    assert site.read_output(recent, "output", 0, 100) is not None
    assert (keep / "precious.txt").read_text() == "stays"  # no link was followed


def test_the_newest_job_directory_stays_so_no_id_is_given_out_twice(tmp_path: Path) -> None:
    files = SiteFiles(tmp_path / "site")
    files.create()
    for job in ("1", "2"):
        files.job_dir(job).mkdir()
        (files.job_dir(job) / "status.json").write_text(f'{{"ended_at": 0, "tag": "aif-{job}"}}')
    (files.jobs / "9-not-a-job").mkdir()
    assert sweep(files, resolve_isolation("none"), now=1e9, retention_s=1.0) == ["1"]
    assert files.job_dir("2").is_dir() and (files.jobs / "9-not-a-job").is_dir()
