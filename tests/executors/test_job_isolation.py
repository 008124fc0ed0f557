"""A job cannot take over the platform (issue 11): real jobs through the real emulated
executor, with secrets planted where the platform keeps them (its environment, the data
folder, the database, the demo token file, the CLI profile, another project's job folder).
The job tries to read each one, and to write into the data folder, and gets nothing."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from aifactories.db.engine import make_engine
from aifactories.domain.clock import SystemClock
from aifactories.domain.errors import ConfigurationError
from aifactories.domain.jobs import JobState
from aifactories.executors import _confine
from aifactories.executors.emulated import EmulatedExecutor
from aifactories.executors.isolation import JobIsolation, probe_bwrap, resolve_isolation

from .conftest import FAST, SITE, one, request, wait_for

ROOT = os.geteuid() == 0
BWRAP = shutil.which("bwrap")
SANDBOX = BWRAP is not None and probe_bwrap(BWRAP, ROOT) is None
REPO = Path(__file__).resolve().parents[2]

MODES = [
    pytest.param("sandbox", marks=pytest.mark.skipif(not SANDBOX, reason="no usable bwrap")),
    pytest.param("user", marks=pytest.mark.skipif(not ROOT, reason="needs root")),
]


@dataclass
class Planted:
    """A platform with secrets where it keeps them; ``values`` must never reach a job."""

    data: Path
    config: Path
    values: dict[str, str]

    @property
    def state_dir(self) -> Path:
        return self.data / "sites" / SITE.id


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder under /tmp that any user may traverse (pytest's own are 0700, which would
    hide the data folder from a job user whatever its own mode)."""
    folder = Path(tempfile.mkdtemp(prefix="aif-isolation-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def planted(open_folder: Path, monkeypatch: pytest.MonkeyPatch) -> Planted:
    values = {name: f"{name}-{secrets.token_hex(8)}" for name in ("smtp", "hook", "token")}
    values.update({name: f"{name}-{secrets.token_hex(8)}" for name in ("db", "profile")})
    monkeypatch.setenv("AIFACTORIES_SMTP_PASSWORD", values["smtp"])
    monkeypatch.setenv("AIFACTORIES_WEBHOOK_SECRET", values["hook"])
    data = open_folder / "data"
    data.mkdir(mode=0o700)
    tokens = data / "demo-tokens.txt"
    tokens.write_text(f"operator {values['token']}\n")
    tokens.chmod(0o600)
    engine = make_engine(f"sqlite:///{data / 'aifactories.db'}")
    with engine.begin() as conn:  # a live WAL database, as the running platform has
        conn.execute(text("CREATE TABLE secrets (value TEXT)"))
        conn.execute(text("INSERT INTO secrets VALUES (:v)"), {"v": values["db"]})
    config = open_folder / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    (config / "aifactories").mkdir(parents=True)
    profile = config / "aifactories" / "profile.json"
    fd = os.open(profile, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, f'{{"token": "{values["profile"]}"}}'.encode())
    os.close(fd)
    engine.dispose()
    return Planted(data, config, values)


MakeSite = Callable[[str], EmulatedExecutor]


@pytest.fixture
def make_site(planted: Planted, open_folder: Path) -> Iterator[MakeSite]:
    made: list[EmulatedExecutor] = []

    def make(mode: str) -> EmulatedExecutor:
        isolation = resolve_isolation(
            mode,
            protected=(planted.data,),
            hidden_files=(
                planted.data / "aifactories.db",
                open_folder / "shared" / "catalogue.yaml",
            ),
            users_file=planted.data / "sites" / "job-users.json",
            scratch_dir=open_folder / "scratch",
        )
        executor = EmulatedExecutor(
            SITE, planted.state_dir, SystemClock(), FAST, kill_grace_s=0.5, isolation=isolation
        )
        made.append(executor)
        return executor

    yield make
    for executor in made:
        for entry in (executor.state_dir / "jobs").iterdir():
            executor.cancel(entry.name)


def attack(planted: Planted, others: list[str], *, writes: bool = True) -> str:
    """Every read the issue's attacker made, and a few more, then writes into the platform's
    files (a forged end of job 1 among them); then proof of life."""
    data, state = planted.data, planted.state_dir
    targets = [
        data / "demo-tokens.txt",
        data / "aifactories.db",
        data / "aifactories.db-wal",
        planted.config / "aifactories" / "profile.json",
        f"/proc/{os.getpid()}/environ",  # the platform's process (this test)
        *others,
    ]
    reads = "; ".join(f"cat '{target}'" for target in targets)
    write = (
        f"echo pwned > '{data}/pwned'; echo pwned > '{state}/pwned'; "
        f"echo forged > '{state}/jobs/1/end.json'; "
    )
    return (
        "env; cat /proc/*/environ | tr '\\0' '\\n'; "
        f"{reads}; grep -ra . '{data}' '{state}'; ls -laR '{data}'; "
        f"{write if writes else ''}"
        'echo written > "$HOME/result.txt"; echo alive; true'
    )


def assert_nothing_leaked(planted: Planted, output: str) -> None:
    for name, value in planted.values.items():
        assert value not in output, f"the job read the {name} secret"
    assert not (planted.data / "pwned").exists()
    assert not (planted.state_dir / "pwned").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_a_job_reads_no_secret_and_writes_nothing_of_the_platform(
    make_site: MakeSite, planted: Planted, mode: str
) -> None:
    site = make_site(mode)
    # Another project's job leaves a secret in its own folder, then the attacker looks.
    other_secret = planted.values["other"] = f"other-{secrets.token_hex(8)}"
    victim = request(1, one(1), command=("sh", "-c", f"echo {other_secret} > out"))
    victim = replace(victim, account="p-victim")
    first = site.submit(victim)
    assert wait_for(site, [first])[first].state is JobState.COMPLETED
    victim_files = [str(p) for p in _work_folders(site, first)]
    assert victim_files, "the victim job has no working folder"

    job = site.submit(request(2, one(1), command=("sh", "-c", attack(planted, victim_files))))

    status = wait_for(site, [job])[job]
    output = site.output_path(job).read_text(errors="replace")
    assert status.state is JobState.COMPLETED, output
    assert "alive" in output  # it ran, and its output reached the platform
    assert_nothing_leaked(planted, output)
    assert "AIF_JOB_ID=2" in output  # the job's own variables, and only a few others
    env_names = {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}
    assert not {name for name in env_names if name.startswith("AIFACTORIES_")}
    assert (site.job_dir(first) / "end.json").read_text() != "forged"
    # What the job wrote in its own folder, the platform can read.
    results = [p / "result.txt" for p in _work_folders(site, job)]
    assert [p.read_text() for p in results if p.exists()] == ["written\n"]
    if ROOT:  # per-project users: the two jobs ran as two different unprivileged users
        owners = {_work_folders(site, j)[0].stat().st_uid for j in (first, job)}
        assert len(owners) == 2 and 0 not in owners


@pytest.mark.slow
def test_the_attack_does_read_the_platform_when_jobs_are_not_isolated(
    make_site: MakeSite, planted: Planted
) -> None:
    """The control: the same job, unconfined, gets the operator's token (so the tests above
    would catch a sandbox that let it through)."""
    site = make_site("none")
    # (reads only: an unconfined job that forges its site's files breaks the site itself)
    job = site.submit(request(1, one(1), command=("sh", "-c", attack(planted, [], writes=False))))
    wait_for(site, [job])
    output = site.output_path(job).read_text(errors="replace")
    assert planted.values["token"] in output and planted.values["profile"] in output
    assert planted.values["smtp"] not in output  # the clean environment holds even here


def _work_folders(site: EmulatedExecutor, job: str) -> list[Path]:
    req = json.loads((site.job_dir(job) / "request.json").read_text())
    return [Path(req["env"]["HOME"])]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_a_workdir_is_no_way_into_the_platform(
    make_site: MakeSite, planted: Planted, open_folder: Path, mode: str
) -> None:
    site = make_site(mode)
    link = open_folder / "innocent"
    link.symlink_to(planted.data)
    wanted = [str(planted.data), str(planted.state_dir / "jobs"), "/", str(link), str(Path.home())]
    wanted.append("/" + "a" * 301)  # ENAMETOOLONG: this job runs, and so does the site
    jobs = [
        site.submit(request(i, one(1), command=("sh", "-c", "pwd; cat *; ls"), workdir=w))
        for i, w in enumerate(wanted, start=1)
    ]
    statuses = wait_for(site, jobs)
    for job, workdir in zip(jobs, wanted, strict=True):
        output = site.output_path(job).read_text(errors="replace")
        assert f"workdir {workdir!r} not used" in output
        assert output.splitlines()[1] == str(_work_folders(site, job)[0])  # its own folder
        assert statuses[job].state is not JobState.CANCELLED
        assert_nothing_leaked(planted, output)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_the_demo_training_script_still_runs(make_site: MakeSite, mode: str) -> None:
    if not _enterable_by_others(REPO / "examples" / "train.py"):
        pytest.skip("the checkout is not readable by other users")
    site = make_site(mode)
    command = ("python", "examples/train.py", "--steps", "2", "--step-seconds", "0")
    job = site.submit(request(1, one(2), command=command, workdir=str(REPO)))
    status = wait_for(site, [job])[job]
    output = site.output_path(job).read_text(errors="replace")
    assert status.state is JobState.COMPLETED, output
    assert "step 2/2" in output and "done" in output


def _enterable_by_others(path: Path) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in path.parents) and bool(
        os.stat(path).st_mode & 0o004
    )


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT and SANDBOX), reason="needs root to become an unprivileged user")
def test_the_sandbox_protects_a_platform_that_is_not_root(
    planted: Planted, open_folder: Path
) -> None:
    """Without root, the job runs as the platform's own user: only the sandbox keeps it from
    the platform's files. Built as the executor builds it, started as 'nobody'."""
    nobody = 65534
    for path in [planted.data, *planted.data.rglob("*"), *planted.config.rglob("*")]:
        os.chown(path, nobody, nobody)
    work = open_folder / "work"
    work.mkdir()
    os.chown(work, nobody, nobody)
    assert BWRAP is not None
    isolation = JobIsolation("sandbox", bwrap=BWRAP, protected=(planted.data, planted.config))
    script = attack(planted, []).replace(f"/proc/{os.getpid()}/", "/proc/1/")
    launch = _confine.confine(
        isolation,
        job_dir=open_folder,
        work=work,
        command=("sh", "-c", script),
        job_env={"AIF_JOB_ID": "9"},
        wanted_workdir=None,
        owner=None,
        user="alice",
    )
    done = subprocess.run(
        ["setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", *launch.argv],
        env=launch.env,  # as the runner starts it
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "alive" in output, output
    assert_nothing_leaked(planted, output)
    assert (work / "result.txt").read_text() == "written\n"


# -- the refusal when nothing can isolate jobs ---------------------------------------------


def test_without_root_nor_bubblewrap_the_emulated_site_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_isolation("auto", euid=1000, bwrap=None)
    message = caught.value.message
    assert "cannot isolate jobs" in message
    assert "bubblewrap (bwrap) is not installed" in message
    assert "apt-get install bubblewrap" in message  # how to fix it, three ways
    assert "as root" in message
    assert "AIFACTORIES_JOB_ISOLATION=none" in message


def test_a_bubblewrap_that_cannot_build_a_sandbox_is_named_in_the_refusal() -> None:
    def broken(_bwrap: str, _root: bool) -> str:
        return "setting up uid map: Permission denied"

    with pytest.raises(ConfigurationError, match="setting up uid map: Permission denied"):
        resolve_isolation("auto", euid=1000, bwrap="/usr/bin/bwrap", probe=broken)
    with pytest.raises(ConfigurationError, match="is 'sandbox' but bubblewrap cannot"):
        resolve_isolation("sandbox", euid=0, bwrap="/usr/bin/bwrap", probe=broken)


def test_the_modes_each_machine_gets() -> None:
    def works(_bwrap: str, _root: bool) -> None:
        return None

    user = resolve_isolation("auto", euid=1000, bwrap="/usr/bin/bwrap", probe=works)
    assert (user.mode, user.drop_privileges) == ("sandbox", False)
    if shutil.which("setpriv"):
        root = resolve_isolation("auto", euid=0, bwrap="/usr/bin/bwrap", probe=works)
        assert (root.mode, root.drop_privileges) == ("sandbox", True)
    assert resolve_isolation("auto", euid=0, bwrap=None).mode == "user"
    assert resolve_isolation("none", euid=1000, bwrap=None).mode == "none"
    with pytest.raises(ConfigurationError, match="does not run as root"):
        resolve_isolation("user", euid=1000, bwrap=None)
    with pytest.raises(ConfigurationError, match="not a mode"):
        resolve_isolation("chroot")


def test_an_executor_without_isolation_refuses_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(ConfigurationError, match="cannot isolate jobs"):
        EmulatedExecutor(SITE, tmp_path / "site", SystemClock())
    assert not (tmp_path / "site").exists()


# -- through the platform ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not (SANDBOX or ROOT), reason="this machine cannot isolate jobs")
def test_the_demo_attack_through_the_platform_gets_nothing(open_folder: Path) -> None:
    """The issue's attack, replayed: 'aif up --demo' with mail and webhook secrets set, a
    member's job reads the token file, the database, the CLI profile and the platform's
    environment. It gets none of them, and the data folder and database are private."""
    from tests.e2e.server import Server

    data = open_folder / "data"
    smtp, hook = f"smtp-{secrets.token_hex(8)}", f"hook-{secrets.token_hex(8)}"
    server = Server(
        open_folder,
        f"sqlite:///{data / 'aifactories.db'}",
        extra_env={"AIFACTORIES_SMTP_PASSWORD": smtp, "AIFACTORIES_WEBHOOK_SECRET": hook},
    )
    server.start("--demo")
    try:
        planted = Planted(data, open_folder / "config", {"smtp": smtp, "hook": hook})
        for line in (data / "demo-tokens.txt").read_text().splitlines():
            name, token = line.split()
            planted.values[f"token of {name}"] = token
        script = attack(planted, []).replace(f"/proc/{os.getpid()}/", "/proc/*/")
        submitted = server.aif(
            "submit", "-G", "1", "-t", "1:00:00", "--json", "--", "sh", "-c", script
        )
        assert submitted.returncode == 0, submitted.stderr
        job_id = json.loads(submitted.stdout)["id"]
        headers = {"Authorization": f"Bearer {server.token('alice')}"}
        for _ in range(600):
            job = httpx.get(f"{server.url}/jobs/{job_id}", headers=headers, timeout=10).json()
            if job["state"] in {"completed", "failed", "cancelled", "timeout"}:
                break
            time.sleep(0.1)
        assert job["state"] == "completed", job
        # the job's output is in its folder (Slurm's slurm-<id>.out), as it is on a cluster
        files = data.glob("sites/*/jobs/*/work/slurm-*.out")
        outputs = [p.read_text(errors="replace") for p in files]
        output = next(text for text in outputs if "AIF_JOB_NAME=" in text and "alive" in text)
    finally:
        server.stop()
    assert_nothing_leaked(planted, output)
    assert (data.stat().st_mode & 0o777, (data / "aifactories.db").stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )
    for suffix in ("-wal", "-shm"):
        wal = data / f"aifactories.db{suffix}"
        assert not wal.exists() or wal.stat().st_mode & 0o777 == 0o600


def test_an_old_data_folder_and_database_are_made_private_at_start(tmp_path: Path) -> None:
    """A data folder and a SQLite file left readable by an older version (0755, 0644) are
    the platform's only once it starts (0700, 0600), -wal and -shm included."""
    from aifactories.services.platform import Platform
    from aifactories.settings import Settings

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    database = data / "aifactories.db"
    database.touch(mode=0o644)
    platform = Platform(Settings(data_dir=data, run_broker=False))
    try:
        with platform.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        modes = {p.name: p.stat().st_mode & 0o777 for p in data.iterdir() if p.is_file()}
    finally:
        platform.stop()
    assert data.stat().st_mode & 0o777 == 0o700
    assert modes[database.name] == 0o600
    assert modes.get("aifactories.db-wal", 0o600) == 0o600
    assert modes.get("aifactories.db-shm", 0o600) == 0o600
    assert set(modes.values()) == {0o600}


@pytest.mark.skipif(not ROOT, reason="needs root to make a folder someone else owns")
def test_a_scratch_folder_made_by_someone_else_is_refused(open_folder: Path) -> None:
    """User mode makes job folders in a world-writable place (/var/tmp): a folder another
    user made there first would give that user the jobs' files."""
    scratch = open_folder / "scratch"
    scratch.mkdir()
    os.chown(scratch, 65534, 65534)
    isolation = resolve_isolation("user", scratch_dir=scratch, bwrap=None)
    with pytest.raises(ConfigurationError, match="not a folder of the platform's user"):
        EmulatedExecutor(SITE, open_folder / "site", SystemClock(), isolation=isolation)


@pytest.mark.slow
@pytest.mark.skipif(not SANDBOX, reason="no usable bwrap")
def test_a_setting_file_in_a_usable_workdir_is_hidden(
    make_site: MakeSite, planted: Planted, open_folder: Path
) -> None:
    """A workdir may hold a setting file (the catalogue): the job sees the folder's files
    through the links in its own folder, but that file is empty."""
    shared = open_folder / "shared"
    shared.mkdir(mode=0o755)
    (shared / "catalogue.yaml").write_text(f"secret: {planted.values['token']}\n")
    (shared / "data.txt").write_text("the member's data\n")
    site = make_site("sandbox")
    command = ("sh", "-c", "pwd; cat catalogue.yaml data.txt")
    job = site.submit(request(1, one(1), command=command, workdir=str(shared)))
    state = wait_for(site, [job])[job].state
    output = site.output_path(job).read_text()
    assert state is JobState.COMPLETED, output
    assert output == f"{_work_folders(site, job)[0]}\nthe member's data\n"


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="needs root: the job's user is then not the platform's")
@pytest.mark.parametrize("mode", MODES)
def test_a_workdir_the_job_may_not_list_is_not_staged(
    make_site: MakeSite, open_folder: Path, mode: str
) -> None:
    """The platform lists the submission folder to link its entries: a folder the job's
    user may enter but not read (0711) would give away its names, so it is not used."""
    private = open_folder / "private"
    private.mkdir(mode=0o711)
    (private / "secret-name.txt").write_text("x\n")
    site = make_site(mode)
    job = site.submit(request(1, one(1), command=("sh", "-c", "ls"), workdir=str(private)))
    state = wait_for(site, [job])[job].state
    output = site.output_path(job).read_text()
    assert state is JobState.COMPLETED, output
    assert f"workdir {str(private)!r} not used (the job's user may not read it)" in output
    assert "secret-name" not in output
