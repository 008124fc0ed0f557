"""The sbatch options the platform knows, in one table: what each does here.

Read by the script parser (``#SBATCH`` lines and the same options on ``aif submit``'s command
line) and by ``aif submit --help``. Standard library only: the CLI imports it at start-up.

Every option is one of three kinds, so that nothing a user wrote is dropped silently:

* ``honoured`` -- the platform acts on it (placement, accounting, the job's environment, ...);
* ``hint`` -- Slurm itself treats it as a hint or a site matter; accepted, with a printed warning
  saying that the platform does not act on it;
* anything not in the table is refused, with the option's name and the list of known ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["honoured", "hint"]


@dataclass(frozen=True, slots=True)
class Directive:
    long: str  # "--nodes"
    short: str | None  # "-N"
    kind: Kind
    takes_value: bool
    meaning: str  # what it does on this platform, for --help and the docs


DIRECTIVES: tuple[Directive, ...] = (
    # what the job is and who pays
    Directive("--job-name", "-J", "honoured", True, "the job's name (%x)"),
    Directive("--account", "-A", "honoured", True, "the project that pays (its code)"),
    Directive(
        "--partition",
        "-p",
        "honoured",
        True,
        "partition(s), by catalogue name or a site's own name (standard-g, boost_usr_prod)",
    ),
    Directive("--time", "-t", "honoured", True, "time limit: MM, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]"),
    # resources: what placement honours
    Directive("--nodes", "-N", "honoured", True, "node count"),
    Directive("--gpus", "-G", "honoured", True, "GPUs in all, [MODEL:]N"),
    Directive("--gpus-per-node", None, "honoured", True, "GPUs per node, [MODEL:]N"),
    Directive("--gres", None, "honoured", True, "gpu:N or gpu:MODEL:N per node"),
    Directive("--ntasks", "-n", "honoured", True, "tasks in all (srun starts them)"),
    Directive("--ntasks-per-node", None, "honoured", True, "tasks per node"),
    Directive("--cpus-per-task", "-c", "honoured", True, "CPU cores per task"),
    Directive("--mem", None, "honoured", True, "memory per node (M, G, T); 0 = all of it"),
    Directive("--mem-per-gpu", None, "honoured", True, "memory per GPU (M, G, T)"),
    Directive("--exclusive", None, "honoured", False, "whole nodes, charged whole"),
    # output, arrays, dependencies, mail, signals
    Directive("--output", "-o", "honoured", True, "standard output file: %j %x %u %A %a %N %%"),
    Directive("--error", "-e", "honoured", True, "standard error file (default: with the output)"),
    Directive("--chdir", "-D", "honoured", True, "the job's working folder"),
    Directive("--array", "-a", "honoured", True, "job array: 0-99, 1,3,5, 0-15:4, %N throttle"),
    Directive(
        "--dependency",
        "-d",
        "honoured",
        True,
        "afterok|afterany|afternotok:JOB[:JOB...], singleton",
    ),
    Directive("--mail-type", None, "honoured", True, "BEGIN, END, FAIL, REQUEUE, ALL, NONE"),
    Directive("--mail-user", None, "honoured", True, "where the mail goes (default: you)"),
    Directive("--requeue", None, "honoured", False, "requeue the job if its site loses it"),
    Directive("--no-requeue", None, "honoured", False, "never requeue the job"),
    Directive("--signal", None, "honoured", True, "[B:]SIGNAL[@SECONDS] before the time limit"),
    # platform options (#AIF lines, and the same on the command line)
    Directive("--countries", None, "honoured", True, "data residency: DE,FI (#AIF)"),
    Directive("--gpu-model", None, "honoured", True, "GPU model, or any (#AIF)"),
    Directive("--min-gpu-memory", None, "honoured", True, "GB per GPU at least (#AIF)"),
    Directive("--runtime", None, "honoured", True, "emulated sites: how long it runs (#AIF)"),
    # hints: Slurm's own hints or site matters; accepted with a warning
    Directive("--qos", "-q", "hint", True, "the platform chooses the site's QOS"),
    Directive("--constraint", "-C", "hint", True, "node features: the site decides"),
    Directive("--hint", None, "hint", True, "task binding hint"),
    Directive("--distribution", "-m", "hint", True, "task distribution hint"),
    Directive("--cpus-per-gpu", None, "hint", True, "use --cpus-per-task"),
    Directive("--mem-per-cpu", None, "hint", True, "use --mem or --mem-per-gpu"),
    Directive("--export", None, "hint", True, "jobs start with a clean environment"),
    Directive("--open-mode", None, "hint", True, "output files are appended to"),
    Directive("--comment", None, "hint", True, "the platform's tag uses the comment"),
    Directive("--reservation", None, "hint", True, "site reservations are not brokered"),
    Directive("--nice", None, "hint", True, "priority is the programme's"),
    Directive("--threads-per-core", None, "hint", True, "a site matter"),
    Directive("--gpu-bind", None, "hint", True, "a site matter"),
    Directive("--gpus-per-task", None, "hint", True, "use --gpus-per-node and --ntasks-per-node"),
    Directive("--wckey", None, "hint", True, "not used"),
    Directive("--profile", None, "hint", True, "not used"),
)

BY_NAME: dict[str, Directive] = {d.long: d for d in DIRECTIVES} | {
    d.short: d for d in DIRECTIVES if d.short
}


def directives_help() -> str:
    """The table for ``aif submit --help``: honoured options, then the accepted hints."""
    lines = ["Honoured #SBATCH directives (the same options work on this command line):"]
    for d in DIRECTIVES:
        if d.kind == "honoured":
            name = f"{d.short}, {d.long}" if d.short else d.long
            lines.append(f"  {name:<24} {d.meaning}")
    hints = ", ".join(d.long for d in DIRECTIVES if d.kind == "hint")
    lines.append(f"Accepted with a warning (Slurm hints or site matters): {hints}.")
    lines.append("Any other option is refused with its name.")
    return "\n".join(lines)
