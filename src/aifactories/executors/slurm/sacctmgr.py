"""A site's accounts, associations and GPU-minute limits, read and written through slurmdbd.

Commands (each with the site's ``SLURM_CONF``, through :meth:`SlurmCliExecutor.run`, so an
``ssh_host`` works too):

- ``scontrol show config``: the cluster name and whether accounting is kept in slurmdbd;
- ``sacctmgr -n -P show assoc cluster=C accounts=aifactories withsubaccounts
  format=account,user,parentname,grptresmins``: the whole managed subtree in one call (its
  shape worked out from the parent names); and, only for project accounts about to be
  added, the same for those names across the cluster, to refuse a code that names one of
  the site's own accounts;
- ``scontrol show assoc_mgr flags=assoc accounts=a,b,...``: the GPU-minutes each account has
  used as Slurm counts them against ``GrpTRESMins`` (``gres/gpu=LIMIT(USED)``: decayed use,
  updated at job end and every PriorityCalcPeriod);
- ``sacctmgr -i load file=/dev/stdin``: every addition and limit of a pass in one command
  (a flat file: accounts with ``GrpTRESMins=gres/gpu=N``, then each account's users);
- ``sacctmgr -i remove account|user where ... cluster=C``: removals, several names a call.
  ``cluster=`` always: one slurmdbd may serve several clusters (several sites), and an
  account removed without it would vanish from all of them.

Failures: an unreachable controller or slurmdbd is :class:`SiteUnavailable` (from the CLI
runner: "Connection refused" and the like); Slurm's refusal to remove what active jobs use
("Job(s) active") is :class:`AccountsBusy`, for the caller to retry later; anything else
Slurm refuses is :class:`ProtocolError` with Slurm's own words. Nothing here knows the
ledger: the desired state and the plan live in ``aifactories.broker.site_accounts``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from aifactories.domain.errors import ProtocolError, SiteUnavailable
from aifactories.domain.sites import Site
from aifactories.executors.slurm.cli import CommandFailed, SlurmCliExecutor

PARENT = "aifactories"
# Names per command line: sacctmgr takes comma lists, but a command line has its limits.
BATCH = 200
_GPU_LIMIT = re.compile(r"(?:^|,)gres/gpu=(\d+)")
_ASSOC_RECORD = re.compile(r"^ClusterName=\S+ Account=(\S+) UserName=(\S*)")
_GPU_MINS = re.compile(r"GrpTRESMins=\S*?gres/gpu=(\w+)\((\d+)\)")
# What sacctmgr lists under a refusal: "A = acct   U = user" (U missing for an account).
_REFUSED_ROW = re.compile(r"A = (\S+)(?:\s+U = (\S+))?")
_BUSY = re.compile(r"Job\(s\) active", re.IGNORECASE)
_DEFAULT_ACCOUNT = re.compile(r"default account", re.IGNORECASE)


class AccountsBusy(Exception):
    """Slurm refused to remove accounts or associations that active jobs still use.
    ``busy`` holds the refused (account, user) pairs (user "" for a whole account)."""

    def __init__(self, busy: Sequence[tuple[str, str]], said: str) -> None:
        super().__init__(said)
        self.busy = list(busy)


@dataclass
class ObservedAccount:
    """A managed account as the site has it: users, GPU-minute limit, GPU-minutes used."""

    name: str
    users: set[str] = field(default_factory=set)
    limit_minutes: int | None = None
    used_minutes: int = 0


@dataclass
class ObservedSite:
    """The site's side: the managed accounts (children of the parent), and what else sits
    in the subtree or outside it."""

    parent_exists: bool
    accounts: dict[str, ObservedAccount] = field(default_factory=dict)
    parent_users: set[str] = field(default_factory=set)  # users on the parent itself
    nested: set[str] = field(default_factory=set)  # accounts deeper in the subtree
    outside: set[str] = field(default_factory=set)  # accounts not in the subtree


@dataclass(frozen=True)
class SiteConfig:
    cluster: str
    accounting_storage: str

    @property
    def slurmdbd(self) -> bool:
        return self.accounting_storage == "accounting_storage/slurmdbd"


def parse_associations(text: str) -> ObservedSite:
    """Read ``sacctmgr -n -P show assoc format=account,user,parentname,grptresmins``."""
    parents: dict[str, str] = {}
    limits: dict[str, int | None] = {}
    users: dict[str, set[str]] = defaultdict(set)
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 4 or not cells[0]:
            continue
        account, user, parent, grp = cells[:4]
        if user:
            users[account].add(user)
        else:
            parents[account] = parent
            match = _GPU_LIMIT.search(grp)
            limits[account] = int(match.group(1)) if match else None
    observed = ObservedSite(parent_exists=PARENT in parents, parent_users=users.get(PARENT, set()))
    for account, parent in parents.items():
        if account == PARENT:
            continue
        if parent == PARENT:
            observed.accounts[account] = ObservedAccount(
                account, set(users.get(account, ())), limits[account]
            )
        elif _under_parent(account, parents):
            observed.nested.add(account)
        else:
            observed.outside.add(account)
    return observed


def _under_parent(account: str, parents: Mapping[str, str]) -> bool:
    seen: set[str] = set()
    while account in parents and account not in seen:
        seen.add(account)
        account = parents[account]
        if account == PARENT:
            return True
    return False


def parse_used_minutes(text: str) -> dict[str, int]:
    """GPU-minutes used per account, from ``scontrol show assoc_mgr flags=assoc``."""
    used: dict[str, int] = {}
    current: str | None = None
    for line in text.splitlines():
        record = _ASSOC_RECORD.match(line)
        if record is not None:  # an account's own record has no UserName
            current = record.group(1) if not record.group(2) else None
            continue
        match = _GPU_MINS.search(line)
        if match is not None and current is not None:
            used[current] = int(match.group(2))
            current = None
    return used


def refused_rows(said: str) -> list[tuple[str, str]]:
    """The (account, user) pairs sacctmgr lists under a refusal."""
    return [(a, u or "") for a, u in _REFUSED_ROW.findall(said)]


def load_file(
    cluster: str,
    add_parent: bool,
    limits: Mapping[str, int | None],
    users: Mapping[str, Iterable[str]],
) -> str:
    """The flat file of one ``sacctmgr load``: the parent (if missing) under root, each
    account of ``limits`` or ``users`` under the parent (``GrpTRESMins=gres/gpu=N`` where N
    is given), then each account's users. Load adds and modifies, never removes."""
    lines = [f"Cluster - '{cluster}'"]
    if add_parent:
        lines += ["Parent - 'root'", f"Account - '{PARENT}':Description='aifactories projects'"]
    lines.append(f"Parent - '{PARENT}'")
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
    return "\n".join(lines) + "\n"


def removal_batches(
    remove: Mapping[str, set[str]], present: Mapping[str, set[str]], size: int = BATCH
) -> list[tuple[list[str], list[str]]]:
    """Group associations to remove (account -> users) into (users, accounts) pairs for
    ``sacctmgr remove user where name=U account=A``, which removes every (u, a) in U x A.
    An account joins a batch only if, for every account of the merged batch, the merged
    users hold no association at the site (``present``) that must stay. Members rarely
    share projects, so a whole pass's removals usually take one or two calls."""

    def harmless(account: str, users: set[str]) -> bool:
        return not (present.get(account, set()) & users) - remove.get(account, set())

    batches: list[tuple[set[str], set[str]]] = []
    for account in sorted(remove):
        users = set(remove[account])
        if not users:
            continue
        for b_users, b_accounts in batches:
            merged = b_users | users
            if (
                len(b_accounts) < size
                and len(merged) <= size
                and harmless(account, merged)
                and all(harmless(a, users) for a in b_accounts)
            ):
                b_users |= users
                b_accounts.add(account)
                break
        else:
            batches.append((users, {account}))
    return [(sorted(u), sorted(a)) for u, a in batches]


def _users_of(account: str) -> Callable[[list[str]], list[str]]:
    """``remove`` arguments for users' associations with one account."""

    def what(names: list[str]) -> list[str]:
        return ["user", "where", f"name={','.join(names)}", f"account={account}"]

    return what


def chunks(names: Iterable[str], size: int = BATCH) -> list[list[str]]:
    items = sorted(names)
    return [items[k : k + size] for k in range(0, len(items), size)]


class SlurmAccountsClient:
    """One site's accounts through ``sacctmgr`` and ``scontrol``. See the module docstring."""

    def __init__(
        self, site: Site, slurm_conf: str, ssh_host: str | None = None, timeout_s: float = 120.0
    ) -> None:
        self.site_id = site.id
        self._cli = SlurmCliExecutor(
            site, slurm_conf, ssh_host=ssh_host, command_timeout_s=timeout_s
        )
        self._config: SiteConfig | None = None

    def _call(self, argv: Sequence[str], stdin: str | None = None) -> str:
        """Run one command; CommandFailed passes through for the caller to read."""
        try:
            return self._cli.run(list(argv), stdin=stdin)
        except SiteUnavailable as exc:
            if argv[0] != "sacctmgr" or "unreachable: " not in exc.message:
                raise
            # the runner says "controller"; sacctmgr talks to slurmdbd
            detail = exc.message.split("unreachable: ", 1)[1]
            raise SiteUnavailable(f"site {self.site_id}: slurmdbd unreachable: {detail}") from exc

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        try:
            return self._call(argv, stdin)
        except CommandFailed as exc:
            said = (exc.stderr + "\n" + exc.stdout).strip()
            if _BUSY.search(said):
                raise AccountsBusy(refused_rows(said), said) from exc
            raise ProtocolError(f"site {self.site_id}: {exc}") from exc

    @property
    def config(self) -> SiteConfig:
        if self._config is None:
            text = self._run(["scontrol", "show", "config"])
            values = {
                k.strip(): v.strip()
                for k, _, v in (line.partition("=") for line in text.splitlines())
            }
            cluster = values.get("ClusterName", "")
            if not cluster:
                raise ProtocolError(f"site {self.site_id}: no ClusterName in its configuration")
            self._config = SiteConfig(cluster, values.get("AccountingStorageType", ""))
        return self._config

    # -- reading -----------------------------------------------------------------------------

    def _associations(self, accounts: str, *options: str) -> str:
        return self._run(
            [
                "sacctmgr",
                "-n",
                "-P",
                "show",
                "assoc",
                f"cluster={self.config.cluster}",
                f"accounts={accounts}",
                *options,
                "format=account,user,parentname,grptresmins",
            ]
        )

    def observe(self, wanted: Iterable[str] = ()) -> ObservedSite:
        """The subtree under the parent, with each managed account's used GPU-minutes; and,
        of the ``wanted`` account names not in it, those that exist elsewhere at the site
        (asked only for those names: reading the whole cluster is the slow part)."""
        observed = parse_associations(self._associations(PARENT, "withsubaccounts"))
        subtree = {PARENT, *observed.accounts, *observed.nested}
        for chunk in chunks(set(wanted) - subtree):
            rows = parse_associations(self._associations(",".join(chunk)))
            observed.outside |= (set(rows.accounts) | rows.nested | rows.outside) - subtree
        # one call for up to a thousand accounts: the controller answers from memory
        for chunk in chunks(observed.accounts, 1000):
            used = parse_used_minutes(
                self._run(
                    ["scontrol", "show", "assoc_mgr", "flags=assoc", f"accounts={','.join(chunk)}"]
                )
            )
            for name, minutes in used.items():
                if name in observed.accounts:
                    observed.accounts[name].used_minutes = minutes
        return observed

    # -- writing -----------------------------------------------------------------------------

    def load(
        self,
        add_parent: bool,
        limits: Mapping[str, int | None],
        users: Mapping[str, Iterable[str]],
    ) -> None:
        """Add the parent (if asked), accounts, limits and users in one ``sacctmgr load``."""
        text = load_file(self.config.cluster, add_parent, limits, users)
        self._run(["sacctmgr", "-i", "load", "file=/dev/stdin"], stdin=text)

    def remove_accounts(self, accounts: Iterable[str]) -> list[str]:
        """Remove accounts (with their users and sub-accounts) from this cluster; return
        those Slurm keeps because jobs still use them (the others are gone)."""
        busy: list[str] = []
        for chunk in chunks(accounts):
            busy += self._remove_all_but_busy(
                chunk,
                lambda names: ["account", "where", f"name={','.join(names)}"],
                lambda row: row[0],
                leaving=chunk,
            )
        return sorted(busy)

    def remove_users(
        self, remove: Mapping[str, Iterable[str]], present: Mapping[str, set[str]]
    ) -> dict[str, list[str]]:
        """Remove the associations ``remove`` (account -> users), several accounts a call
        where ``present`` (account -> users at the site) shows the cross product of names
        takes nothing else (see :func:`removal_batches`). Return, per account, the users
        Slurm keeps because their jobs there are still active."""
        busy: dict[str, list[str]] = {}
        wanted = {a: set(u) for a, u in remove.items()}
        for users, accounts in removal_batches(wanted, present):
            try:
                self._remove(
                    ["user", "where", f"name={','.join(users)}", f"account={','.join(accounts)}"],
                    accounts,
                )
                continue
            except AccountsBusy:
                pass
            for account in accounts:  # one account a call, to learn which users are kept
                kept = self._remove_all_but_busy(
                    sorted(wanted[account]),
                    _users_of(account),
                    lambda row: row[1],
                    leaving=[account],
                )
                if kept:
                    busy[account] = kept
        return busy

    def _remove_all_but_busy(
        self,
        names: list[str],
        what: Callable[[list[str]], list[str]],
        name_of: Callable[[tuple[str, str]], str],
        leaving: Sequence[str],
    ) -> list[str]:
        """Remove ``names``; if Slurm refuses (all of them: it commits all or nothing) for
        active jobs, drop the names its refusal lists and remove the rest. Return the
        names kept. A refusal that names none of them is resolved one name a call."""
        todo = list(names)
        busy: set[str] = set()
        while todo:
            try:
                self._remove(what(todo), leaving)
                break
            except AccountsBusy as exc:
                named = {name_of(row) for row in exc.busy} & set(todo)
                if not named:
                    for name in todo:
                        try:
                            self._remove(what([name]), leaving)
                        except AccountsBusy:
                            busy.add(name)
                    break
                busy |= named
                todo = [n for n in todo if n not in named]
        return sorted(busy)

    def _remove(self, what: list[str], leaving: Sequence[str]) -> None:
        """One ``sacctmgr remove``. "Nothing deleted" is success (already gone). Where Slurm
        refuses because it is some user's default account, that user gets another default
        (one not being removed) and the removal is tried again."""
        argv = ["sacctmgr", "-i", "remove", *what, f"cluster={self.config.cluster}"]
        gone = set(leaving)
        for _attempt in range(5):
            try:
                self._call(argv)
                return
            except CommandFailed as exc:
                said = (exc.stderr + "\n" + exc.stdout).strip()
                if _BUSY.search(said):
                    raise AccountsBusy(refused_rows(said), said) from exc
                if "Nothing deleted" in said:
                    return
                rows = refused_rows(said)
                if not _DEFAULT_ACCOUNT.search(said) or not rows:
                    raise ProtocolError(f"site {self.site_id}: {exc}") from exc
                # the accounts it names go too (sub-accounts of those removed, say)
                gone |= {a for a, _u in rows}
                self._move_defaults({u for _a, u in rows if u}, gone)
        raise ProtocolError(f"site {self.site_id}: could not remove {' '.join(what)}")

    def _move_defaults(self, users: set[str], leaving: set[str]) -> None:
        """Give each of ``users`` a default account outside ``leaving`` (the first one in
        name order), or remove the user from this cluster if it has no other account."""
        rows = self._run(
            [
                "sacctmgr",
                "-n",
                "-P",
                "show",
                "assoc",
                f"cluster={self.config.cluster}",
                f"users={','.join(sorted(users))}",
                "format=account,user",
            ]
        )
        kept: dict[str, set[str]] = defaultdict(set)
        for line in rows.splitlines():
            account, _, user = (c.strip() for c in line.partition("|"))
            if user in users and account not in leaving:
                kept[user].add(account)
        cluster = f"cluster={self.config.cluster}"
        for chunk in chunks(u for u in users if not kept.get(u)):
            self._run(
                ["sacctmgr", "-i", "remove", "user", "where", f"name={','.join(chunk)}", cluster]
            )
        by_default: dict[str, list[str]] = defaultdict(list)
        for user in sorted(u for u in users if kept.get(u)):
            by_default[sorted(kept[user])[0]].append(user)
        for account, holders in sorted(by_default.items()):
            for chunk in chunks(holders):
                self._run(
                    [
                        "sacctmgr",
                        "-i",
                        "modify",
                        "user",
                        "where",
                        f"name={','.join(chunk)}",
                        cluster,
                        "set",
                        f"defaultaccount={account}",
                    ]
                )
