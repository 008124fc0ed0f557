"""``aif allocations``."""

from __future__ import annotations

import typer

allocations_app = typer.Typer(help="allocations", no_args_is_help=True)
