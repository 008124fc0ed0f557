"""How the emulated site keeps a job away from the platform: which isolation this machine
allows, and which OS user a project's jobs run as.

A job is code from a member; the platform holds the database, every token and every setting.
So a job never runs with the platform's privileges (see docs/job-isolation.md):

- ``sandbox``: the job runs in a bubblewrap (``bwrap``) sandbox that shows it the system's
  programs read-only, its own working folder and nothing of the platform; when the platform
  is root, the job also drops to its project's unprivileged user inside the sandbox.
- ``user``: the platform is root but cannot build a sandbox (no bwrap, or no namespaces in a
  container): the job runs as its project's unprivileged user, and the kernel's file
  permissions keep it out of the data folder (0700) and the database (0600).
- ``none``: no isolation at all; only when the operator asks for it.

``auto`` (the default) takes the strongest mode the machine allows, and refuses when there
is none: running members' code as the platform's own user is never a silent fallback.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from aifactories.domain.errors import ConfigurationError
from aifactories.executors.runner import atomic_write_json

Mode = Literal["sandbox", "user", "none"]
REQUESTED_MODES = ("auto", "sandbox", "user", "none")

# Job users are numeric ids without /etc/passwd entries (nothing to create or clean up on
# the host). The default range sits above the one systemd gives containers (up to
# 1879048191) and below 2^31, where no distribution allocates accounts.
DEFAULT_UID_BASE = 1_950_000_000
DEFAULT_UID_COUNT = 100_000

_HOW_TO_FIX = (
    "Fix one of: install bubblewrap ('sudo apt-get install bubblewrap'; without root it needs "
    "unprivileged user namespaces, 'sysctl kernel.unprivileged_userns_clone=1'); or start "
    "the platform as root, so that jobs run as unprivileged users; or, on a machine that only "
    "you use, set AIFACTORIES_JOB_ISOLATION=none to run jobs unconfined. "
    "See docs/job-isolation.md."
)

BwrapProbe = Callable[[str, bool], str | None]
"""``probe(bwrap, as_root) -> None`` if a sandbox can be built, else the reason why not."""


@dataclass(frozen=True, slots=True)
class JobIsolation:
    """A resolved isolation (never ``auto``); built by :func:`resolve_isolation`.

    ``protected`` folders are never shown to a job nor accepted as its working folder (nor
    any folder that contains or lies inside one); ``hidden_files`` are masked if a job's
    working folder contains them. ``users_file`` maps projects to their job users: share
    one between the sites of a machine so that two projects never share a user.
    ``scratch_dir`` (user mode) holds the jobs' working folders: the data folder is 0700,
    so a job user could not reach a folder inside it.
    """

    mode: Mode
    bwrap: str | None = None
    setpriv: str | None = None
    drop_privileges: bool = False
    uid_base: int = DEFAULT_UID_BASE
    uid_count: int = DEFAULT_UID_COUNT
    users_file: Path | None = None
    scratch_dir: Path | None = None
    protected: tuple[Path, ...] = ()
    hidden_files: tuple[Path, ...] = ()

    def describe(self) -> str:
        """For the start-up line and the logs."""
        who = "as unprivileged per-project users" if self.drop_privileges else "as this user"
        if self.mode == "sandbox":
            return f"jobs in a bubblewrap sandbox, {who}"
        if self.mode == "user":
            return "jobs as unprivileged per-project users (no sandbox: bubblewrap unavailable)"
        return "jobs NOT isolated (job_isolation=none): they can read the platform's files"

    def with_protected(self, *paths: Path) -> JobIsolation:
        known = set(self.protected)
        extra = tuple(p for p in paths if p not in known)
        return replace(self, protected=self.protected + extra)


def platform_private_paths() -> tuple[Path, ...]:
    """What is the platform's own wherever it runs: its user's CLI profile (a token)."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    explicit = os.environ.get("AIFACTORIES_CONFIG")  # the CLI's profile path, if moved
    return (Path(config) / "aifactories", *([Path(explicit)] if explicit else []))


def resolve_isolation(
    requested: str = "auto",
    *,
    protected: Iterable[Path] = (),
    hidden_files: Iterable[Path] = (),
    users_file: Path | None = None,
    scratch_dir: Path | None = None,
    uid_base: int = DEFAULT_UID_BASE,
    uid_count: int = DEFAULT_UID_COUNT,
    euid: int | None = None,
    bwrap: str | Literal["detect"] | None = "detect",
    probe: BwrapProbe | None = None,
) -> JobIsolation:
    """The isolation this machine gives jobs, or ConfigurationError saying why there is none
    and how to get one. ``euid``, ``bwrap`` and ``probe`` are detected unless given (tests
    force them to check the refusal)."""
    if requested not in REQUESTED_MODES:
        raise ConfigurationError(
            f"job_isolation {requested!r} is not a mode; use one of {', '.join(REQUESTED_MODES)}"
        )
    root = (os.geteuid() if euid is None else euid) == 0
    unconfined = JobIsolation(
        "none",
        uid_base=uid_base,
        uid_count=uid_count,
        users_file=users_file,
        protected=tuple(Path(p) for p in (*protected, *platform_private_paths())),
        hidden_files=tuple(Path(p) for p in hidden_files),
    )
    if requested == "none":
        return unconfined
    bwrap_path = shutil.which("bwrap") if bwrap == "detect" else bwrap
    setpriv = shutil.which("setpriv")
    why_no_sandbox = _why_no_sandbox(bwrap_path, setpriv, root, probe or probe_bwrap)
    if requested in ("auto", "sandbox") and why_no_sandbox is None:
        return replace(
            unconfined,
            mode="sandbox",
            bwrap=bwrap_path,
            setpriv=setpriv if root else None,
            drop_privileges=root,
        )
    if requested == "sandbox":
        raise ConfigurationError(
            f"job_isolation is 'sandbox' but {why_no_sandbox}. "
            "Install bubblewrap, or set AIFACTORIES_JOB_ISOLATION=auto. See docs/job-isolation.md."
        )
    if root:
        scratch = scratch_dir or default_scratch_dir()
        return replace(unconfined, mode="user", drop_privileges=True, scratch_dir=scratch)
    if requested == "user":
        raise ConfigurationError(
            "job_isolation is 'user' but the platform does not run as root, so it cannot run "
            "jobs as other users. Start it as root, or set AIFACTORIES_JOB_ISOLATION=auto "
            "(a bubblewrap sandbox). See docs/job-isolation.md."
        )
    raise ConfigurationError(
        "the emulated sites cannot isolate jobs on this machine: the platform does not run as "
        f"root (so it cannot run jobs as other users) and {why_no_sandbox}. Jobs would run as "
        "the platform's own user and could read its database, tokens and settings. " + _HOW_TO_FIX
    )


def _why_no_sandbox(
    bwrap: str | None, setpriv: str | None, root: bool, probe: BwrapProbe
) -> str | None:
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    if root and setpriv is None:
        return "setpriv (util-linux) is missing, so a sandboxed job could not drop root"
    reason = probe(bwrap, root)
    return None if reason is None else f"bubblewrap cannot build a sandbox here: {reason}"


def sandbox_base_args(root: bool) -> list[str]:
    """The namespaces of every job sandbox; the probe builds exactly these."""
    args = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not root:
        # Without root the sandbox is a user namespace; forbid nesting another one in it.
        args += ["--unshare-user", "--disable-userns"]
    return args


@functools.cache
def probe_bwrap(bwrap: str, root: bool) -> str | None:
    """Build a throw-away sandbox once per process: bwrap may be installed and still fail
    (no user namespaces for unprivileged users, a container without CAP_SYS_ADMIN)."""
    args = [bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    args += [*sandbox_base_args(root), "--", "true"]
    try:
        done = subprocess.run(args, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    return done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"


def default_scratch_dir() -> Path:
    return Path("/var/tmp/aifactories-jobs")


def prepare_scratch_dir(path: Path) -> None:
    """The parent of the job folders in user mode: the platform's own, traversable but not
    listable (0711), so a job reaches its folder and cannot list the others. Refuse a
    folder someone else made (it sits in a world-writable place like /var/tmp)."""
    path.mkdir(mode=0o711, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not path.is_dir() or path.is_symlink() or info.st_uid != os.geteuid():
        raise ConfigurationError(
            f"job scratch folder {path} is not a folder of the platform's user; remove it "
            "or set AIFACTORIES_JOB_SCRATCH_DIR to another path"
        )
    os.chmod(path, 0o711)


class JobUsers:
    """Project -> job uid (the gid is the same number), allocated once, in order, in a JSON
    file under an flock, so every site of a machine gives a project the same user and two
    projects never share one: their job folders stay apart even without a sandbox."""

    def __init__(self, path: Path, base: int = DEFAULT_UID_BASE, count: int = DEFAULT_UID_COUNT):
        self.path = path
        self.base = base
        self.count = count

    def uid_for(self, project: str) -> int:
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            users = self._read()
            if project not in users:
                if len(users) >= self.count:
                    raise ConfigurationError(
                        f"all {self.count} job users from uid {self.base} are taken; "
                        "raise AIFACTORIES_JOB_UID_COUNT"
                    )
                users[project] = self.base + len(users)
                atomic_write_json(self.path, users)
                os.chmod(self.path, 0o600)
            return users[project]
        finally:
            os.close(fd)

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise ConfigurationError(f"{self.path} is not a job users file; remove it")
        return {str(k): int(v) for k, v in data.items()}
