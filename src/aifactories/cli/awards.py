"""``aif awards``."""

from __future__ import annotations

import typer

awards_app = typer.Typer(help="awards", no_args_is_help=True)
