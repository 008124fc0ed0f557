"""Make sure Debian's Slurm packages and the two users the local sites need are present.

``slurmrest`` runs slurmrestd (it refuses root); ``aifjob`` is an ordinary user for jobs
submitted through REST with a token (jobs run as the token's user).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

REST_USER = "slurmrest"
JOB_USER = "aifjob"

CORE_PACKAGES = ("slurm-wlm", "slurmrestd", "munge", "slurm-wlm-jwt-plugin")
DBD_PACKAGES = ("slurmdbd", "mariadb-server")
_JWT_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/slurm-wlm/auth_jwt.so")


def missing_packages(dbd: bool) -> list[str]:
    checks = {
        "slurm-wlm": shutil.which("slurmctld") and shutil.which("slurmd"),
        "slurmrestd": shutil.which("slurmrestd"),
        "munge": shutil.which("munged"),
        "slurm-wlm-jwt-plugin": _JWT_PLUGIN.exists()
        or any(Path("/usr/lib").glob("*/slurm-wlm/auth_jwt.so")),
    }
    if dbd:
        checks["slurmdbd"] = shutil.which("slurmdbd")
        checks["mariadb-server"] = shutil.which("mariadbd")
    return [name for name, found in checks.items() if not found]


def install(dbd: bool = True) -> None:
    """apt-get what is missing (root only) and create the users; safe to run again."""
    missing = missing_packages(dbd)
    if missing:
        if os.geteuid() != 0:
            raise PermissionError(
                f"the local Slurm sites need the Debian packages {' '.join(missing)}: run "
                "'scripts/slurm-sites install' as root (or apt-get install them)"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    _ensure_user(REST_USER, system=True)
    _ensure_user(JOB_USER, system=False)


def _ensure_user(name: str, system: bool) -> None:
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise PermissionError(
            f"user {name!r} is missing: run 'scripts/slurm-sites install' as root"
        )
    flags = ["-r", "-M", "-s", "/usr/sbin/nologin"] if system else ["-m", "-s", "/bin/bash"]
    subprocess.run(["useradd", *flags, name], check=True)


def require_installed(dbd: bool) -> None:
    """Install if we can (root), else explain what is missing."""
    if os.geteuid() != 0 and os.environ.get("AIF_SLURM_NO_INSTALL"):
        return
    install(dbd=dbd)
