"""One job's confinement: its working folder, where it starts, its environment and the
command line that starts it inside its sandbox (see :mod:`~aifactories.executors.isolation`).

Runs in the platform process when the job is scheduled; the runner then only starts what
this module wrote into the job's request. Callers translate OSError.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aifactories.executors import scontrol as scontrol_module
from aifactories.executors import srun as srun_module
from aifactories.executors._staging import stage_submission
from aifactories.executors.isolation import JobIsolation, prepare_scratch_dir, sandbox_base_args

MINIMAL_PATH = "/usr/local/bin:/usr/bin:/bin"
# Inside a sandbox only: srun, and 'python' where the system has python3 only. First on the
# PATH, so that the job's srun is ours even where the machine has Slurm's.
SHIM_DIR = "/run/aif-bin"
# Slurm's commands a batch script uses, the site's own (stdlib scripts run by python3 -S)
TOOLS = {"srun": Path(srun_module.__file__), "scontrol": Path(scontrol_module.__file__)}
# The system as a job sees it, read-only. Directories that are symlinks (merged /usr) stay
# symlinks.
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Only the parts of /etc that programs need to start, resolve names and check certificates:
# /etc also holds daemons' keys (munge, ssh) and may hold the platform's own settings.
_ETC = (
    "alternatives", "bash.bashrc", "ca-certificates", "ca-certificates.conf", "debian_version",
    "gai.conf", "group", "host.conf", "hostname", "hosts", "inputrc", "ld.so.cache",
    "ld.so.conf", "ld.so.conf.d", "locale.alias", "localtime", "mime.types", "networks",
    "nsswitch.conf", "os-release", "passwd", "profile", "protocols", "python3",
    f"python3.{sys.version_info.minor}", "resolv.conf", "services", "ssl", "terminfo",
    "timezone",
)  # fmt: skip

Owner = tuple[int, int]
"""(uid, gid) of the job's unprivileged user."""


@dataclass(slots=True)
class Launch:
    """What the runner starts: ``argv`` in ``cwd`` with exactly ``env``; as ``owner`` if
    set (user mode: the runner drops privileges itself, then enters ``cwd``)."""

    argv: list[str]
    cwd: str
    env: dict[str, str]
    owner: Owner | None = None
    notes: list[str] = field(default_factory=list)
    exec_error: str | None = None


def make_work_folder(
    isolation: JobIsolation, job_dir: Path, label: str, owner: Owner | None
) -> Path:
    """The job's own writable folder (its HOME). In user mode it lives in the scratch folder
    (a job user cannot reach into the 0700 data folder); otherwise in the job's directory,
    shown to the sandbox at the same path."""
    if isolation.mode == "user":
        assert isolation.scratch_dir is not None
        prepare_scratch_dir(isolation.scratch_dir)
        _python_shim(isolation.scratch_dir / "bin")
        work = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=isolation.scratch_dir))
    else:
        work = job_dir / "work"
        work.mkdir(mode=0o700, exist_ok=True)
    if owner is not None:
        os.chown(work, *owner)
        os.chmod(work, 0o700)
    return work


def confine(
    isolation: JobIsolation,
    *,
    job_dir: Path,
    work: Path,
    command: Sequence[str],
    job_env: Mapping[str, str],
    wanted_workdir: str | None,
    owner: Owner | None,
    user: str,
    tools: Path | None = None,
    outputs: Mapping[str, bool] | None = None,
) -> Launch:
    """The launch of ``command`` for this isolation (see the module docstring). ``tools`` is
    the site's folder for srun (default: ``bin`` in the job's directory; user mode uses the
    scratch folder's, which its job users can reach). The job always starts in ``work``,
    its own writable folder, staged with links to a usable ``wanted_workdir``'s entries
    (see :mod:`~aifactories.executors._staging`; ``outputs`` as there)."""
    tools = tools or job_dir / "bin"
    notes: list[str] = []
    source: Path | None = None  # the submission folder, shown read-only
    if wanted_workdir:
        refusal = workdir_refusal(isolation, wanted_workdir, owner)
        if refusal is None:
            source = Path(os.path.realpath(wanted_workdir))
            try:
                notes += stage_submission(source, work, job_dir, owner, outputs or {})
            except OSError as exc:  # listed as the platform: a folder it may not read
                source, refusal = None, f"unusable: {exc.strerror or exc}"
        if refusal is not None:
            why = f"workdir {wanted_workdir!r} not used ({refusal})"
            notes.append(f"aifactories: {why}; the job starts in its own folder {work}")
    name = user or "job"
    env = {"HOME": str(work), "LANG": "C.UTF-8", "USER": name, "LOGNAME": name}
    env.update(job_env)
    if isolation.mode == "sandbox":
        shim = _needs_python_shim()
        install_srun(tools)
        env["PATH"] = f"{SHIM_DIR}:{MINIMAL_PATH}"
        _login_profile(work, SHIM_DIR, owner)
        nodes = [name for name in job_env.get("AIF_NODELIST", "").split(",") if name]
        argv = _sandbox_argv(isolation, work, source, command, owner, shim, tools, nodes)
        shown = (work,) if source is None else (work, source)
        error = _missing_program(command, MINIMAL_PATH, work, shown, shim)
        return Launch(argv, str(job_dir), env, None, notes, error)
    if isolation.mode == "user":
        assert isolation.scratch_dir is not None
        srun_dir = install_srun(isolation.scratch_dir / "bin")
        env["PATH"] = f"{srun_dir}:{MINIMAL_PATH}"
        _login_profile(work, str(srun_dir), owner)
        return Launch(list(command), str(work), env, owner, notes)
    # none: the operator chose no isolation; still no platform secrets in the environment
    env["PATH"] = f"{install_srun(tools)}:{MINIMAL_PATH}:{Path(sys.executable).parent}"
    _login_profile(work, str(tools), owner)
    return Launch(list(command), str(work), env, None, notes)


def _login_profile(work: Path, srun_dir: str, owner: Owner | None) -> None:
    """A ``.profile`` in the job's own folder (its HOME) that puts srun first again: a login
    shell (``#!/bin/bash -l``, usual on LUMI) resets PATH in /etc/profile, and would then
    find the machine's own srun, or none."""
    content = (
        "# written by the emulated site: its srun first, as on a cluster\n"
        f'PATH="{srun_dir}:$PATH"; export PATH\n'
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:  # never over a file (or through a link) already there
        fd = os.open(work / ".profile", flags, 0o644)
    except FileExistsError:
        return
    try:
        os.write(fd, content.encode())
        if owner is not None:
            os.fchown(fd, *owner)
    finally:
        os.close(fd)


def install_srun(folder: Path) -> Path:
    """``srun`` and ``scontrol`` (two-line sh wrappers) and their ``.py`` in ``folder``, for
    the jobs: the system's python3 runs them (inside a sandbox it is the only Python)."""
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    python = shutil.which("python3", path=MINIMAL_PATH) or sys.executable
    for name, source in TOOLS.items():
        wrapper = f'#!/bin/sh\nexec {python} -S "${{0%/*}}/{name}.py" "$@"\n'
        _replace_if_changed(folder / f"{name}.py", source.read_bytes(), 0o644)
        _replace_if_changed(folder / name, wrapper.encode(), 0o755)
    return folder


def _replace_if_changed(path: Path, content: bytes, mode: int) -> None:
    # Sites share a folder (user mode's scratch): replace atomically, and only on a change.
    try:
        if path.read_bytes() == content and stat.S_IMODE(path.stat().st_mode) == mode:
            return
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    tmp.chmod(mode)
    os.replace(tmp, path)


def workdir_refusal(isolation: JobIsolation, wanted: str, owner: Owner | None) -> str | None:
    """Why a user-given working folder is not used, or None. A member names any path: it
    must not become a way into the platform's files."""
    try:
        if not os.path.isabs(wanted):
            return "not an absolute path"
        real = Path(os.path.realpath(wanted))
        if not real.is_dir():
            return "no such folder at the site"
        if isolation.mode == "none":
            return None
        for private in isolation.protected:
            mine = Path(os.path.realpath(private))
            if real == mine or mine in real.parents or real in mine.parents:
                return "it holds or is inside the platform's files"
        home = Path(os.path.realpath(Path.home()))
        if real == home or real in home.parents:
            return "it holds the platform user's home folder"
        if home in real.parents and real.relative_to(home).parts[0].startswith("."):
            return "it is inside a hidden folder of the platform user's home"
        if owner is not None and not _enterable(real, owner):
            return "the job's user may not enter it"
        if owner is not None and not _may_list(real, owner):
            return "the job's user may not read it"
    except OSError as exc:
        return f"unusable: {exc.strerror or exc}"
    return None


def _enterable(path: Path, owner: Owner) -> bool:
    """Whether ``owner`` may traverse every folder down to ``path`` (mode bits, no ACLs)."""
    uid, gid = owner
    for folder in (path, *path.parents):
        info = os.stat(folder)
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def _may_list(path: Path, owner: Owner) -> bool:
    """Whether ``owner`` may list ``path`` (mode bits): the platform lists it for the job."""
    info = os.stat(path)
    if info.st_uid == owner[0]:
        return bool(info.st_mode & stat.S_IRUSR)
    if info.st_gid == owner[1]:
        return bool(info.st_mode & stat.S_IRGRP)
    return bool(info.st_mode & stat.S_IROTH)


def _needs_python_shim() -> bool:
    # Debian installs python3 only; `python train.py` must work in a job as it does in the
    # demo's instructions.
    found = shutil.which("python", path=MINIMAL_PATH)
    return found is None and shutil.which("python3", path=MINIMAL_PATH) is not None


def _python_shim(folder: Path) -> None:
    python3 = shutil.which("python3", path=MINIMAL_PATH)
    folder.mkdir(mode=0o755, exist_ok=True)
    link = folder / "python"
    wanted = python3 is not None and not shutil.which("python", path=MINIMAL_PATH)
    if wanted and python3 is not None and not link.is_symlink():
        link.symlink_to(python3)


def _sandbox_argv(
    isolation: JobIsolation,
    work: Path,
    source: Path | None,
    command: Sequence[str],
    owner: Owner | None,
    shim: bool,
    tools: Path,
    nodes: Sequence[str] = (),
) -> list[str]:
    assert isolation.bwrap is not None
    args = [isolation.bwrap]
    for name in _SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]  # else bwrap makes it 0700: a job user's dead end
    for entry in _ETC:
        if not (nodes and entry == "hosts"):
            args += ["--ro-bind-try", f"/etc/{entry}", f"/etc/{entry}"]
    if nodes:
        # The job's nodes are this machine, under the names Slurm gives them: the batch
        # script runs on the first (its hostname), and every node name resolves here, so
        # MASTER_ADDR=$(scontrol show hostnames ... | head -n 1) works.
        args += ["--ro-bind", str(_hosts_file(work.parent, nodes)), "/etc/hosts"]
        args += ["--hostname", nodes[0]]
    # A new /proc shows the sandbox's processes only: no /proc/<platform pid>/environ.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    args += sandbox_base_args(root=isolation.drop_privileges)
    if owner is not None:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # for setpriv only
    args += [*_mount_point(work), "--bind", str(work), str(work)]
    if source is not None and source != work:
        # the submission folder, which the links in the job's folder point into
        args += [*_mount_point(source), "--ro-bind", str(source), str(source)]
        for hidden in isolation.hidden_files:
            if source in hidden.parents and hidden.is_file():
                # an empty file of ours over it (/dev/null would be refused: nodev mounts)
                args += ["--ro-bind", str(_empty_file(work.parent)), str(hidden)]
    args += ["--perms", "0755", "--dir", SHIM_DIR]
    for name in TOOLS:
        for file in (name, f"{name}.py"):
            args += ["--ro-bind", str(tools / file), f"{SHIM_DIR}/{file}"]
    if shim:
        python3 = shutil.which("python3", path=MINIMAL_PATH)
        assert python3 is not None
        args += ["--symlink", python3, f"{SHIM_DIR}/python"]
    args += ["--chdir", str(work), "--"]
    if owner is not None:
        assert isolation.setpriv is not None
        uid, gid = owner
        args += [isolation.setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        args += ["--inh-caps=-all", "--"]
    return args + list(command)


def _hosts_file(folder: Path, nodes: Sequence[str]) -> Path:
    try:
        system = Path("/etc/hosts").read_text(encoding="utf-8", errors="replace")
    except OSError:
        system = "127.0.0.1\tlocalhost\n"
    hosts = folder / "hosts"
    hosts.write_text(f"{system.rstrip()}\n127.0.0.1\t{' '.join(nodes)}\n", encoding="utf-8")
    hosts.chmod(0o644)
    return hosts


def _empty_file(folder: Path) -> Path:
    empty = folder / "empty"
    empty.touch(mode=0o444)
    return empty


def _mount_point(path: Path) -> list[str]:
    """Folders above a bind mount, traversable (bwrap would make them 0700)."""
    args: list[str] = []
    for parent in reversed(path.parents[:-1]):  # without "/"
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _missing_program(
    command: Sequence[str], path: str, cwd: Path, shown: tuple[Path, ...], shim: bool
) -> str | None:
    """Why the sandbox cannot start ``command[0]``, checked on the host (bwrap itself would
    only exit with 1): the runner then reports 'cannot start' as it does without a sandbox."""
    program = command[0] if command else ""
    if (shim and program == "python") or program in TOOLS:
        return None
    if "/" not in program:
        found = shutil.which(program, path=path)
        where = None if found is None else Path(found)
    else:
        where = cwd / program
    if where is None or not where.exists():
        return "No such file or directory"
    visible = [Path("/") / name for name in _SYSTEM_DIRS] + list(shown)
    absolute = Path(os.path.abspath(where))
    if not any(absolute == root or root in absolute.parents for root in visible):
        return "No such file or directory (not visible in the job's sandbox)"
    return None
