"""``aif reviews``."""

from __future__ import annotations

import typer

reviews_app = typer.Typer(help="reviews", no_args_is_help=True)
