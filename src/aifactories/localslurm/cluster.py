"""Start and stop independent local Slurm clusters ("sites") on this host, for tests and demos.

Every site has its own slurm.conf, ClusterName, ports, state, logs, JWT key and fake GPUs;
one private munged serves them all, and with ``dbd`` one private MariaDB holds each site's
accounting database (one slurmdbd per site). Nothing touches /etc/slurm, /etc/munge or
/run/munge. Every daemon is stopped by the PID it wrote, whatever state it is in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aifactories.localslurm.config import (
    REST_API,
    SiteLayout,
    gres_conf,
    slurm_conf,
    slurmdbd_conf,
)
from aifactories.localslurm.install import JOB_USER, REST_USER, require_installed

READY_TIMEOUT_S = 60.0


class LocalSlurmError(RuntimeError):
    """A local cluster did not start; the message carries the tail of its logs."""


@dataclass(frozen=True, slots=True)
class SiteRequest:
    nodes: int = 1
    gpus_per_node: int = 4
    gpu_type: str = "a100"
    partition: str = "gpu"
    cpus_per_node: int = 16
    memory_mb: int = 16000


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_pids(pids: Iterable[int], grace_s: float = 10.0) -> None:
    """TERM, wait up to ``grace_s``, then KILL: a slurmd stuck in its registration retry
    loop ignores TERM until its next retry."""
    live = [p for p in pids if _alive(p)]
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while live and time.monotonic() < deadline:
        live = [p for p in live if _alive(p)]
        time.sleep(0.05)
    for pid in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(paths: Iterable[Path], lines: int = 15) -> str:
    out = []
    for path in paths:
        if path.is_file():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path}\n" + "\n".join(text))
    return "\n".join(out)


def _port_free(port: int) -> bool:
    """Whether a daemon could bind the port now (a port in TIME_WAIT cannot be bound)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_base(first_slot: int = 0, slots: int = 40, low: int = 20000) -> int:
    """A port base (``low`` + k * 1000) whose ports for up to four sites of up to 16 nodes
    (controller, slurmd, slurmrestd, slurmdbd) and MariaDB are all free right now. Tests and
    benchmarks running at the same time start from different ``first_slot``s."""
    for k in range(slots):
        port0 = low + ((first_slot + k) % slots) * 1000
        wanted = [port0 + 99] + [
            port0 + 100 * i + offset for i in range(1, 5) for offset in (*range(17), 80, 90)
        ]
        if all(_port_free(p) for p in wanted):
            return port0
    raise LocalSlurmError("no free port range for local Slurm sites")


class LocalSlurm:
    """Local sites under ``base`` (short: munge's socket path must fit 108 bytes), with ports
    from ``port0 + 100 * index``. ``mariadb_port`` is ``port0 + 99``."""

    def __init__(self, base: Path | str, port0: int = 17000, dbd: bool = False) -> None:
        self.base = Path(base)
        self.port0 = port0
        self.dbd = dbd
        self.host = socket.gethostname().split(".")[0]
        self.sites: dict[str, SiteLayout] = {}

    @property
    def munge_dir(self) -> Path:
        return self.base / "munge"

    @property
    def munge_socket(self) -> Path:
        return self.munge_dir / "munge.sock"

    @property
    def mariadb_port(self) -> int:
        return self.port0 + 99

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, requests: Sequence[SiteRequest]) -> list[SiteLayout]:
        """Start one site per request (site1, site2, ...), waiting until every node is idle
        and slurmrestd answers. On failure everything started so far is stopped."""
        require_installed(dbd=self.dbd)
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)  # slurmrestd runs as its own user and must read the configs
        try:
            self._start_munge()
            if self.dbd:
                self._start_mariadb()
            layouts = [self.add_site(k + 1, r) for k, r in enumerate(requests)]
            for layout in layouts:
                self.wait_ready(layout)
        except BaseException:
            self.stop()
            raise
        return layouts

    def add_site(self, index: int, request: SiteRequest) -> SiteLayout:
        layout = SiteLayout(
            name=f"site{index}",
            index=index,
            root=self.base / f"site{index}",
            port=self.port0 + 100 * index,
            nodes=request.nodes,
            gpus_per_node=request.gpus_per_node,
            gpu_type=request.gpu_type,
            partition=request.partition,
            cpus_per_node=request.cpus_per_node,
            memory_mb=request.memory_mb,
            dbd=self.dbd,
        )
        self._write_site(layout)
        self.sites[layout.name] = layout
        self.start_daemons(layout)
        return layout

    def _write_site(self, layout: SiteLayout) -> None:
        shutil.rmtree(layout.root, ignore_errors=True)  # fresh state: job ids from FirstJobId
        for sub in ("etc", "state", "spool", "log", "run", "dev"):
            (layout.root / sub).mkdir(parents=True, exist_ok=True)
        (layout.root / "state").chmod(0o700)
        layout.output_dir.mkdir()
        layout.output_dir.chmod(0o1777)  # REST jobs run as the token's user
        layout.jwt_key.write_bytes(os.urandom(32))
        layout.jwt_key.chmod(0o600)
        for node in layout.node_names():
            (layout.root / "spool" / node).mkdir(parents=True, exist_ok=True)
            devices = layout.device_dir(node)
            devices.mkdir(parents=True, exist_ok=True)
            for gpu in range(layout.gpus_per_node):
                # slurmd only accepts character devices for GPUs; nothing ever opens them.
                os.mknod(devices / f"nvidia{gpu}", 0o666 | 0o020000, os.makedev(195, gpu))
        layout.slurm_conf.write_text(slurm_conf(layout, self.host, self.munge_socket))
        (layout.etc / "gres.conf").write_text(gres_conf(layout))
        if layout.dbd:
            dbd_conf = layout.etc / "slurmdbd.conf"
            dbd_conf.write_text(slurmdbd_conf(layout, self.munge_socket, self.mariadb_port))
            dbd_conf.chmod(0o600)

    def env(self, layout: SiteLayout) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(layout.slurm_conf)}

    def start_daemons(self, layout: SiteLayout) -> None:
        env = self.env(layout)
        if layout.dbd:  # slurmdbd reads slurmdbd.conf next to $SLURM_CONF; it has no -f
            subprocess.run(["slurmdbd"], env=env, check=True, timeout=30)
            self._wait(lambda: _port_open(layout.dbd_port), layout, "slurmdbd to listen")
        self.start_controller(layout)
        for node in layout.node_names():
            subprocess.run(
                ["slurmd", "-f", str(layout.slurm_conf), "-N", node], env=env, check=True
            )
        self.start_rest(layout)

    def start_controller(self, layout: SiteLayout) -> None:
        """Start (or restart, keeping its state) the site's slurmctld."""
        subprocess.run(
            ["slurmctld", "-f", str(layout.slurm_conf)], env=self.env(layout), check=True
        )

    def stop_controller(self, layout: SiteLayout, hard: bool = True) -> None:
        """Kill the site's slurmctld (SIGKILL by default: a crash, as the fault tests need)."""
        pid = _read_pid(layout.run / "slurmctld.pid")
        if pid is None:
            return
        if hard:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            stop_pids([pid])

    def start_rest(self, layout: SiteLayout) -> None:
        plugins = f"openapi/{REST_API}" + (f",openapi/db{REST_API}" if layout.dbd else "")
        log = (layout.log / "slurmrestd.log").open("ab")
        # SLURM_JWT=daemon: without it slurmrestd rejects every token; -u: it refuses root.
        proc = subprocess.Popen(
            [
                "slurmrestd",
                "-f",
                str(layout.slurm_conf),
                "-a",
                "rest_auth/jwt",
                "-s",
                plugins,
                "-u",
                REST_USER,
                f"127.0.0.1:{layout.rest_port}",
            ],
            env={**self.env(layout), "SLURM_JWT": "daemon"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        (layout.run / "slurmrestd.pid").write_text(f"{proc.pid}\n")

    def wait_ready(self, layout: SiteLayout) -> None:
        def ready() -> bool:
            if not _port_open(layout.rest_port):
                return False
            out = subprocess.run(
                ["sinfo", "-h", "-o", "%t"],
                env=self.env(layout),
                capture_output=True,
                text=True,
                timeout=15,
            )
            return out.returncode == 0 and set(out.stdout.split()) == {"idle"}

        self._wait(ready, layout, "every node idle and slurmrestd answering")

    def _wait(self, check: object, layout: SiteLayout, what: str) -> None:
        assert callable(check)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise LocalSlurmError(
            f"{layout.name}: timed out waiting for {what}\n" + _tail(sorted(layout.log.glob("*")))
        )

    def stop(self) -> None:
        """Cancel every job, stop every daemon by its PID file, then munged and MariaDB."""
        for layout in self.sites.values():
            self._stop_site(layout)
        for root in sorted(self.base.glob("site*")):
            if root.is_dir():
                stop_pids(p for f in (root / "run").glob("*.pid") if (p := _read_pid(f)))
        pids = [_read_pid(self.munge_dir / "munged.pid"), _read_pid(self.base / "db" / "pid")]
        stop_pids(p for p in pids if p)

    def _stop_site(self, layout: SiteLayout) -> None:
        ctld = _read_pid(layout.run / "slurmctld.pid")
        if ctld and _alive(ctld):
            # A running job's slurmstepd outlives slurmd: cancel the jobs first.
            env = self.env(layout)
            try:
                listed = subprocess.run(
                    ["squeue", "-h", "-o", "%i", "-t", "PD,R,CG,S"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=15,
                )
                ids = listed.stdout.split()
                if ids:
                    subprocess.run(["scancel", *ids], env=env, capture_output=True, timeout=15)
            except subprocess.TimeoutExpired:
                pass
        stop_pids(p for f in layout.run.glob("*.pid") if (p := _read_pid(f)))

    # -- shared daemons ----------------------------------------------------------------------

    def _start_munge(self) -> None:
        munge = self.munge_dir
        munge.mkdir(parents=True, exist_ok=True)
        munge.chmod(0o700)
        key = munge / "munge.key"
        if not key.exists():
            subprocess.run(["mungekey", "-c", "-k", str(key)], check=True)
        key.chmod(0o600)
        pid = _read_pid(munge / "munged.pid")
        if pid and _alive(pid):
            return
        subprocess.run(
            [
                "munged",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={munge / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
            check=True,
        )
        munge.chmod(0o755)  # clients of any uid (slurmrestd's) must reach the socket
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            if time.monotonic() > deadline:
                raise LocalSlurmError("munged did not start\n" + _tail([munge / "munged.log"]))
            time.sleep(0.05)

    def _start_mariadb(self) -> None:
        db = self.base / "db"
        db.mkdir(parents=True, exist_ok=True)
        shutil.chown(db, "mysql", "mysql")
        pid = _read_pid(db / "pid")
        if pid and _alive(pid):
            return
        if not (db / "data" / "mysql").exists():
            subprocess.run(
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    "--user=mysql",
                    f"--datadir={db / 'data'}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                check=True,
                capture_output=True,
            )
        err = (db / "server.err").open("ab")
        subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={db / 'data'}",
                "--bind-address=127.0.0.1",
                f"--port={self.mariadb_port}",
                f"--socket={db / 'sock'}",
                f"--pid-file={db / 'pid'}",
                "--innodb-buffer-pool-size=64M",
                "--skip-name-resolve",
            ],
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
        err.close()
        sql = [
            "mariadb",
            "--no-defaults",
            f"--socket={db / 'sock'}",
            "-uroot",
            "-e",
        ]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while subprocess.run([*sql, "select 1"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise LocalSlurmError("MariaDB did not start\n" + _tail([db / "server.err"]))
            time.sleep(0.1)
        subprocess.run(
            [
                *sql,
                "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw'; "
                "GRANT ALL ON `slurm_acct_db_%`.* TO 'slurm'@'127.0.0.1';",
            ],
            check=True,
            capture_output=True,
        )


__all__ = [
    "JOB_USER",
    "LocalSlurm",
    "LocalSlurmError",
    "SiteLayout",
    "SiteRequest",
    "free_port_base",
    "stop_pids",
]
