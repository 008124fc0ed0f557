"""``python -m aifactories.localslurm install | up | down``: local Slurm sites on this host."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aifactories.localslurm.cluster import LocalSlurm, LocalSlurmError, SiteRequest
from aifactories.localslurm.install import install
from aifactories.localslurm.sites_file import write_sites_file

DEFAULT_BASE = Path("/tmp/aif-slurm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slurm-sites", description=__doc__)
    parser.add_argument("--base", type=Path, default=DEFAULT_BASE, help="where sites live")
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="apt-get the Slurm packages and create the users")
    inst.add_argument("--no-dbd", action="store_true", help="skip slurmdbd and MariaDB")
    up = sub.add_parser("up", help="start local sites and write a sites file for aif up")
    up.add_argument("--sites", type=int, default=3, help="how many sites (1-8)")
    up.add_argument("--nodes", type=int, default=2, help="nodes per site")
    up.add_argument("--gpus", type=int, default=4, help="fake GPUs per node")
    up.add_argument("--backend", choices=("cli", "rest"), default="cli")
    up.add_argument("--dbd", action="store_true", help="real accounting: slurmdbd + MariaDB")
    up.add_argument("--port0", type=int, default=17000, help="site I listens on PORT0+100*I")
    up.add_argument("--out", type=Path, help="sites file (default: BASE/sites.yaml)")
    sub.add_parser("down", help="cancel the sites' jobs and stop every daemon by its PID")
    args = parser.parse_args(argv)

    if args.command == "install":
        install(dbd=not args.no_dbd)
        return 0
    if args.command == "down":
        LocalSlurm(args.base).stop()
        print(f"stopped the local Slurm sites under {args.base}")
        return 0
    if not 1 <= args.sites <= 8:
        parser.error("--sites must be between 1 and 8")
    if not 1 <= args.gpus <= 16 or not 1 <= args.nodes <= 16:
        parser.error("--nodes and --gpus must be between 1 and 16")
    cluster = LocalSlurm(args.base, port0=args.port0, dbd=args.dbd)
    try:
        layouts = cluster.start(
            [SiteRequest(nodes=args.nodes, gpus_per_node=args.gpus)] * args.sites
        )
    except (LocalSlurmError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = write_sites_file(args.out or args.base / "sites.yaml", layouts, args.backend)
    for layout in layouts:
        print(f"{layout.name}: SLURM_CONF={layout.slurm_conf} REST={layout.rest_url}")
    print(f"sites file: {out}\nnext: aif up --sites {out}\nstop: scripts/slurm-sites down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
