"""``aif proposals``."""

from __future__ import annotations

import typer

proposals_app = typer.Typer(help="proposals", no_args_is_help=True)
