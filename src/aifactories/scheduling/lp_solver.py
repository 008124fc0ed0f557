"""One way to make a HiGHS solver, for every LP and MIP in the platform.

HiGHS keeps one thread scheduler per process: the first solve fixes its size, and any later
solver that asks for another ``threads`` value fails its ``run()`` with an error and leaves
the model status "Not Set". The Gavel allocation, the award optimiser and the reviewer
assignment all run in the same API process, so none of them may set ``threads``; they all
come through here and share the default scheduler.
"""

from __future__ import annotations

from typing import Any

import highspy


def new_highs(**options: str | float | int | bool) -> Any:
    """A quiet HiGHS instance with ``options`` set. ``threads`` is refused (see above)."""
    if "threads" in options:
        raise ValueError(
            "do not set HiGHS 'threads' per solver: the thread scheduler is shared by "
            "the whole process and a different value makes every later run() fail"
        )
    # The plain binding, where highspy has one, prints no banner on first use.
    highs: Any = getattr(highspy, "_Highs", highspy.Highs)()
    highs.setOptionValue("output_flag", False)
    for name, value in options.items():
        highs.setOptionValue(name, value)
    return highs
