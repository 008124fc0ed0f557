"""The text of a local site's slurm.conf, gres.conf and slurmdbd.conf.

Each non-default line is there for a reason found on Debian 12 with Slurm 22.05 (see
docs/slurm.md): a private munged socket, no cgroups (several slurmd share one host), fake GPUs
as character devices, finished jobs kept for a day (MinJobAge) and written to a text file
(jobcomp/filetxt, read with ``sacct -c``) when there is no slurmdbd.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REST_API = "v0.0.38"


@dataclass(frozen=True, slots=True)
class SiteLayout:
    """Where one local site keeps everything, and its ports.

    Ports: slurmctld ``port``, slurmd ``port + 1 ..`` (one per node), slurmrestd ``port + 80``,
    slurmdbd ``port + 90``.
    """

    name: str
    index: int
    root: Path
    port: int
    nodes: int
    gpus_per_node: int
    gpu_type: str
    partition: str
    cpus_per_node: int
    memory_mb: int
    dbd: bool

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def slurm_conf(self) -> Path:
        return self.etc / "slurm.conf"

    @property
    def jwt_key(self) -> Path:
        return self.etc / "jwt_hs256.key"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def rest_port(self) -> int:
        return self.port + 80

    @property
    def dbd_port(self) -> int:
        return self.port + 90

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def output_dir(self) -> Path:
        """Where the site's jobs write their output (any user may write there)."""
        return self.root / "jobs"

    @property
    def jobcomp_file(self) -> Path:
        return self.log / "jobcomp.txt"

    def node_names(self) -> list[str]:
        return [f"{self.name}-n{k}" for k in range(1, self.nodes + 1)]

    def device_dir(self, node: str) -> Path:
        return self.root / "dev" / node


def slurm_conf(layout: SiteLayout, host: str, munge_socket: Path) -> str:
    if layout.dbd:
        accounting = (
            "JobAcctGatherType=jobacct_gather/linux\n"
            "JobAcctGatherFrequency=30\n"
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            "AccountingStorageHost=127.0.0.1\n"
            f"AccountingStoragePort={layout.dbd_port}\n"
            # The DBD connection ignores AuthInfo=socket=: it needs the socket here too.
            f"AccountingStoragePass={munge_socket}\n"
            "AccountingStorageTRES=gres/gpu\n"
            # Jobs of unknown accounts are refused and GrpTRESMins limits hold, as at a site.
            "AccountingStorageEnforce=associations,limits,safe\n"
            "AccountingStoreFlags=job_comment\n"
            "PriorityType=priority/multifactor\n"
        )
    else:
        accounting = (
            "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n"
        )
    lines = [
        f"ClusterName={layout.name}",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={layout.port}",
        f"SlurmdPort={layout.port + 1}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        "AuthAltTypes=auth/jwt",
        f"AuthAltParameters=jwt_key={layout.jwt_key}",
        f"StateSaveLocation={layout.root / 'state'}",
        f"SlurmdSpoolDir={layout.root / 'spool'}/%n",
        f"SlurmctldPidFile={layout.run}/slurmctld.pid",
        f"SlurmdPidFile={layout.run}/slurmd-%n.pid",
        f"SlurmctldLogFile={layout.log}/slurmctld.log",
        f"SlurmdLogFile={layout.log}/slurmd-%n.log",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "MailProg=/bin/true",
        "MpiDefault=none",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        accounting.rstrip("\n"),
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={layout.jobcomp_file}",
        "MinJobAge=86400",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=batch_sched_delay=0,bf_interval=5,sched_min_interval=0",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=100",
        "GresTypes=gpu",
        "SlurmdParameters=config_overrides",
        "ReturnToService=2",
        f"FirstJobId={layout.index * 100000 + 1}",
        "KillWait=5",
        "InactiveLimit=0",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=60",
        "MessageTimeout=5",
    ]
    for k, node in enumerate(layout.node_names()):
        lines.append(
            f"NodeName={node} NodeAddr=127.0.0.1 NodeHostname={host} "
            f"Port={layout.port + 1 + k} CPUs={layout.cpus_per_node} "
            f"RealMemory={layout.memory_mb} "
            f"Gres=gpu:{layout.gpu_type}:{layout.gpus_per_node} State=UNKNOWN"
        )
    lines.append(
        f"PartitionName={layout.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
    )
    return "\n".join(lines) + "\n"


def gres_conf(layout: SiteLayout) -> str:
    last = layout.gpus_per_node - 1
    return "".join(
        f"NodeName={node} Name=gpu Type={layout.gpu_type} "
        f"File={layout.device_dir(node)}/nvidia[0-{last}]\n"
        for node in layout.node_names()
    )


def slurmdbd_conf(layout: SiteLayout, munge_socket: Path, mariadb_port: int) -> str:
    return (
        "DbdHost=localhost\n"
        "DbdAddr=127.0.0.1\n"
        f"DbdPort={layout.dbd_port}\n"
        "SlurmUser=root\n"
        "AuthType=auth/munge\n"
        f"AuthInfo=socket={munge_socket}\n"
        "AuthAltTypes=auth/jwt\n"
        f"AuthAltParameters=jwt_key={layout.jwt_key}\n"
        f"PidFile={layout.run}/slurmdbd.pid\n"
        f"LogFile={layout.log}/slurmdbd.log\n"
        "DebugLevel=info\n"
        "StorageType=accounting_storage/mysql\n"
        "StorageHost=127.0.0.1\n"
        f"StoragePort={mariadb_port}\n"
        "StorageUser=slurm\n"
        "StoragePass=slurmpw\n"
        f"StorageLoc=slurm_acct_db_{layout.name.replace('-', '_')}\n"
    )
