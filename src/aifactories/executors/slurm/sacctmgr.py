"""A site's accounts, associations and GPU-minute limits, through ``sacctmgr`` and slurmdbd.

Only the subtree under one parent account (``aifactories``) is read and written: the site's
own accounts are never touched. Additions and limits go in one ``sacctmgr load`` (a flat file
on standard input), so a thousand projects take one command; removals, rare, take one each.
``sacctmgr -i`` commits without asking; ``-n -P`` prints parsable rows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aifactories.domain.errors import ProtocolError
from aifactories.domain.sites import Site
from aifactories.executors.slurm.cli import CommandFailed, SlurmCliExecutor

PARENT = "aifactories"
# Names per command line: sacctmgr takes lists, but a command line has its limits.
_BATCH = 200
_GPU_LIMIT = re.compile(r"(?:^|,)gres/gpu=(\d+)")
_ASSOC_BLOCK = re.compile(r"Account=(\S+) UserName=(\S*)")
_DEFAULT_HOLDER = re.compile(r"A = (\S+)\s+U = (\S+)")
_GPU_MINS_USED = re.compile(r"GrpTRESMins=\S*?gres/gpu=(\w+)\((\d+)\)")


class AccountsBusy(Exception):
    """Slurm refused to remove an account or association with jobs still running."""


@dataclass
class ObservedAccount:
    """A managed account as the site has it: members, GPU-minute limit, minutes used."""

    name: str
    users: set[str] = field(default_factory=set)
    limit_minutes: int | None = None
    used_minutes: int = 0


@dataclass
class ObservedSite:
    parent_exists: bool
    accounts: dict[str, ObservedAccount]


class SlurmAccountsClient:
    def __init__(self, site: Site, slurm_conf: str, ssh_host: str | None = None) -> None:
        self.site_id = site.id
        self._cli = SlurmCliExecutor(site, slurm_conf, ssh_host=ssh_host, command_timeout_s=120)
        self._cluster: str | None = None

    def _run(self, argv: Sequence[str]) -> str:
        try:
            return self._cli.run(list(argv))
        except CommandFailed as exc:
            if "Job(s) active" in exc.stderr or "jobs running" in exc.stderr.lower():
                raise AccountsBusy(exc.stderr.strip()) from exc
            raise ProtocolError(f"site {self.site_id}: {exc}") from exc

    @property
    def accounting(self) -> str:
        return self._cli.accounting

    @property
    def cluster(self) -> str:
        if self._cluster is None:
            config = self._run(["scontrol", "show", "config"])
            match = re.search(r"^ClusterName\s*=\s*(\S+)", config, re.M)
            if match is None:
                raise ProtocolError(f"site {self.site_id}: no ClusterName in its configuration")
            self._cluster = match.group(1)
        return self._cluster

    # -- reading -----------------------------------------------------------------------------

    def observe(self) -> ObservedSite:
        rows = self._run(
            [
                "sacctmgr",
                "-n",
                "-P",
                "show",
                "assoc",
                f"cluster={self.cluster}",
                "format=account,user,parentname,grptresmins",
            ]
        )
        parent_exists = False
        accounts: dict[str, ObservedAccount] = {}
        members: dict[str, set[str]] = defaultdict(set)
        for line in rows.splitlines():
            cells = line.split("|")
            if len(cells) < 4:
                continue
            account, user, parent, limits = (c.strip() for c in cells[:4])
            if account == PARENT and not user:
                parent_exists = True
            if not user and parent == PARENT:
                match = _GPU_LIMIT.search(limits)
                accounts[account] = ObservedAccount(
                    account, limit_minutes=int(match.group(1)) if match else None
                )
            elif user:
                members[account].add(user)
        for name, observed in accounts.items():
            observed.users = members.get(name, set())
        if accounts:
            for name, used in self._used_minutes(sorted(accounts)).items():
                if name in accounts:
                    accounts[name].used_minutes = used
        return ObservedSite(parent_exists, accounts)

    def _used_minutes(self, names: Sequence[str]) -> dict[str, int]:
        """GPU-minutes each account has used, as Slurm counts them against GrpTRESMins."""
        used: dict[str, int] = {}
        for chunk in _chunks(names):
            text = self._run(
                ["scontrol", "show", "assoc_mgr", "flags=assoc", f"accounts={','.join(chunk)}"]
            )
            current: str | None = None
            for line in text.splitlines():
                block = _ASSOC_BLOCK.search(line)
                if block is not None:
                    current = block.group(1) if not block.group(2) else None
                    continue
                match = _GPU_MINS_USED.search(line)
                if match is not None and current is not None:
                    used[current] = int(match.group(2))
                    current = None
        return used

    # -- writing -----------------------------------------------------------------------------

    def load(
        self,
        limits: Mapping[str, int | None],
        users: Mapping[str, Iterable[str]],
    ) -> None:
        """Add or update, in one ``sacctmgr load``: the parent account, each account of
        ``limits`` under it (with ``GrpTRESMins=gres/gpu=N`` where N is given), and each
        account's users. Existing entries are kept (load adds and modifies, never removes);
        an account of that name elsewhere in the tree is moved under the parent."""
        lines = [
            f"Cluster - '{self.cluster}'",
            "Parent - 'root'",
            f"Account - '{PARENT}'",
            f"Parent - '{PARENT}'",
        ]
        names = sorted(set(limits) | set(users))
        for name in names:
            minutes = limits.get(name)
            suffix = f":GrpTRESMins=gres/gpu={minutes}" if minutes is not None else ""
            lines.append(f"Account - '{name}'{suffix}")
        for name in names:
            members = sorted(users.get(name, ()))
            if members:
                lines.append(f"Parent - '{name}'")
                lines.extend(f"User - '{user}'" for user in members)
        try:
            self._cli.run(
                ["sacctmgr", "-i", "load", "file=/dev/stdin"], stdin="\n".join(lines) + "\n"
            )
        except CommandFailed as exc:
            raise ProtocolError(f"site {self.site_id}: {exc}") from exc

    def remove_user(self, user: str, account: str) -> None:
        self._remove(["user", "where", f"name={user}", f"account={account}"], leaving=[account])

    def remove_accounts(self, accounts: Sequence[str]) -> None:
        """Remove accounts; those with jobs still active stay, and are named in the
        AccountsBusy raised at the end (the others are gone)."""
        busy: list[str] = []
        for chunk in _chunks(sorted(accounts)):
            try:
                self._remove(["account", "where", f"name={','.join(chunk)}"], leaving=chunk)
            except AccountsBusy:
                for account in chunk:  # one busy account must not keep the others
                    try:
                        self._remove(["account", "where", f"name={account}"], leaving=[account])
                    except AccountsBusy:
                        busy.append(account)
        if busy:
            raise AccountsBusy(f"jobs still active in {', '.join(busy)}")

    def _remove(self, what: list[str], leaving: Sequence[str] = ()) -> None:
        """Remove; where Slurm refuses because it is some user's default account, give the
        user another default (or, with no account left, remove the user) and try again.
        ``leaving`` are the accounts removed with this call (not eligible as defaults)."""
        argv = ["sacctmgr", "-i", "remove", *what, f"cluster={self.cluster}"]
        for _attempt in range(3):
            try:
                self._cli.run(argv)
                return
            except CommandFailed as exc:
                text = exc.stderr + exc.stdout
                if "Job(s) active" in text or "jobs running" in text.lower():
                    raise AccountsBusy(text.strip()) from exc
                if "default account" not in text:
                    raise ProtocolError(f"site {self.site_id}: {exc}") from exc
                holders = {user for _account, user in _DEFAULT_HOLDER.findall(text)}
                self._move_defaults(
                    holders, {*leaving, *(a for a, _u in _DEFAULT_HOLDER.findall(text))}
                )
        raise ProtocolError(f"site {self.site_id}: could not {' '.join(what)}")

    def _move_defaults(self, users: set[str], leaving: set[str]) -> None:
        rows = self._run(
            [
                "sacctmgr",
                "-n",
                "-P",
                "show",
                "assoc",
                f"cluster={self.cluster}",
                "format=account,user",
            ]
        )
        kept: dict[str, list[str]] = defaultdict(list)
        for line in rows.splitlines():
            account, _, user = line.partition("|")
            if user.strip() in users and account.strip() not in leaving:
                kept[user.strip()].append(account.strip())
        alone = sorted(u for u in users if not kept.get(u))
        for chunk in _chunks(alone):  # no account left: the user goes (one command)
            self._run(
                [
                    "sacctmgr",
                    "-i",
                    "remove",
                    "user",
                    "where",
                    f"name={','.join(chunk)}",
                    f"cluster={self.cluster}",
                ]
            )
        for user in sorted(u for u in users if kept.get(u)):
            self._run(
                [
                    "sacctmgr",
                    "-i",
                    "modify",
                    "user",
                    "where",
                    f"name={user}",
                    f"cluster={self.cluster}",
                    "set",
                    f"defaultaccount={sorted(kept[user])[0]}",
                ]
            )


def _chunks(names: Sequence[str]) -> list[list[str]]:
    items = list(names)
    return [items[k : k + _BATCH] for k in range(0, len(items), _BATCH)]
