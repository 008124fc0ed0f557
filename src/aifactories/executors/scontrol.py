"""``scontrol`` for the jobs of an emulated site: ``show hostnames``, which batch scripts use.

``MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)`` is in most
multi-node training scripts; an emulated site answers it, and says plainly that it has
nothing else, rather than letting the machine's own scontrol, if there is one, talk to a
real cluster. Standard library only, Python 3.8 or
later (see :mod:`~aifactories.executors.srun`, installed beside it).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

_BRACKETS = re.compile(r"^(.*?)\[([^\]]*)\](.*)$")


def expand_hostlist(hostlist: str) -> list[str]:
    """``gpu-[0000-0002,0007],login`` -> gpu-0000, gpu-0001, gpu-0002, gpu-0007, login."""
    names: list[str] = []
    for item in _split_top(hostlist):
        match = _BRACKETS.match(item)
        if match is None:
            names.append(item)
            continue
        prefix, ranges, suffix = match.groups()
        for part in ranges.split(","):
            first, _, last = part.partition("-")
            if not last:
                names.extend(expand_hostlist(prefix + first + suffix))
                continue
            width = len(first)
            for number in range(int(first), int(last) + 1):
                names.extend(expand_hostlist(prefix + str(number).zfill(width) + suffix))
    return names


def _split_top(hostlist: str) -> list[str]:
    """Split at the commas outside brackets."""
    items, depth, current = [], 0, ""
    for char in hostlist.strip():
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return [item for item in [*items, current] if item]


def run(argv: Sequence[str], env: dict[str, str]) -> int:
    words = list(argv)
    if len(words) in (2, 3) and words[:2] == ["show", "hostnames"]:
        given = words[2] if len(words) > 2 else env.get("SLURM_JOB_NODELIST", "")
        try:
            names = expand_hostlist(given)
        except ValueError:
            sys.stderr.write(f"scontrol: {given!r} is not a host list\n")
            return 1
        sys.stdout.write("".join(f"{name}\n" for name in names))
        return 0
    sys.stderr.write(
        "scontrol: an emulated site answers 'scontrol show hostnames [LIST]' only, "
        f"not {' '.join(words)!r}\n"
    )
    return 1


def main() -> int:
    return run(sys.argv[1:], dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
