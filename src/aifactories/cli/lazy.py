"""Subcommands imported only when they run, so that every ``aif`` command starts fast.

The root group knows each subcommand from a static table (name, module, attribute, one-line
help). Listing them (``aif --help``, shell completion of the command name, "did you mean")
reads the table; only resolving a name to run it, show its own help or complete its options
imports its module. Importing every module costs about a second (the services, SQLAlchemy,
polars, ...), which the user would pay on each command.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import typer
import typer.main
from typer._click import Command, Context, Parameter  # Typer's own Click (typer >= 0.29)
from typer._click.exceptions import UsageError
from typer.core import DEFAULT_MARKUP_MODE, TyperCommand, TyperGroup
from typer.models import CommandInfo


@dataclass(frozen=True, slots=True)
class Lazy:
    """A subcommand by where it lives. ``group``: the attribute is a ``typer.Typer`` of
    subcommands (``aif db ...``); otherwise it is a command function, or a ``typer.Typer``
    holding a command of this name (to keep its ``context_settings`` next to it)."""

    name: str
    module: str
    attribute: str
    help: str  # the one-line help that ``aif --help`` shows; a test keeps it equal to the real one
    group: bool = False
    panel: str | None = None  # the heading it is listed under in ``aif --help``


_FLAGS = frozenset({"help", "install_completion", "show_completion"})


class _Listed(TyperCommand):
    """What the listing needs of a subcommand that is not loaded: its name and one-line help."""


def load(entry: Lazy) -> Command:
    """Import ``entry``'s module and build its Click command, as ``add_typer``/``command`` would."""
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name != entry.module:
            raise  # a missing dependency of the module is a bug to see, not a missing command
        raise UsageError(
            f"'aif {entry.name}' is not available in this installation "
            f"(its module {entry.module} is missing); reinstall aifactories"
        ) from None
    target = getattr(module, entry.attribute)
    if entry.group:
        if not isinstance(target, typer.Typer):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a typer.Typer")
        command: Command = typer.main.get_group(target)
    else:
        command = typer.main.get_command_from_info(
            _command_info(entry, target),
            pretty_exceptions_short=True,
            rich_markup_mode=DEFAULT_MARKUP_MODE,
        )
    command.name = entry.name
    return command


def _command_info(entry: Lazy, target: Any) -> CommandInfo:
    if isinstance(target, typer.Typer):
        for info in target.registered_commands:
            callback = info.callback
            if info.name == entry.name or (
                info.name is None and callback is not None and callback.__name__ == entry.name
            ):
                return info
        raise LookupError(f"{entry.module}.{entry.attribute} has no command {entry.name!r}")
    if not callable(target):
        raise TypeError(f"{entry.module}.{entry.attribute} is not a command function")
    function: Callable[..., Any] = target
    return CommandInfo(name=entry.name, callback=function)


class LazyGroup(TyperGroup):
    """A Typer group whose subcommands are listed from ``table`` and imported on use.

    Subclasses set ``table``; ``typer.Typer(cls=...)`` builds it as the root group."""

    table: Sequence[Lazy] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._entries = {entry.name: entry for entry in self.table}
        for entry in self.table:
            # the stand-in keeps the table's order and makes typo suggestions work unloaded
            self.commands[entry.name] = _Listed(
                name=entry.name,
                help=entry.help,
                callback=None,
                add_help_option=False,
                rich_help_panel=entry.panel,
            )

    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)
        for param in params:
            # Typer's --help, --install-completion and --show-completion default to None,
            # which Typer coerces through pydantic (a twentieth of a second to import) on
            # every command that goes through this group; False means the same to their
            # callbacks and is taken as it is.
            if param.name in _FLAGS and param.default is None:
                param.default = False
        return params

    def load_command(self, name: str) -> Command:
        """The real command of ``name``, importing its module the first time."""
        command = self.commands[name]
        if isinstance(command, _Listed):
            command = load(self._entries[name])
            self.commands[name] = command
        return command

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        # Running a subcommand, showing its help or completing its arguments all come here.
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, _Listed):
            command = self.load_command(name)
        return name, command, rest
