"""plotly.js, embedded once in a report: the basic bundle (scatter, bar and pie traces,
1.2 MB) where it draws every figure, else the full bundle of the Python package (4.8 MB).
See plotlyjs/README.md for where the basic bundle comes from."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from functools import cache
from importlib.resources import files

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs, get_plotlyjs_version

BASIC_VERSION = "4.1.1"
BASIC_TRACES = frozenset({"scatter", "bar", "pie"})


@cache
def _basic() -> str:
    packed = files("aifactories.twin") / "plotlyjs" / f"plotly-basic-{BASIC_VERSION}.min.js.gz"
    return gzip.decompress(packed.read_bytes()).decode("utf-8")


def basic_draws(figures: Sequence[go.Figure]) -> bool:
    """Whether the basic bundle draws ``figures``: only its trace types, and the installed
    plotly writes figures for the same major version of plotly.js."""
    same_major = get_plotlyjs_version().split(".")[0] == BASIC_VERSION.split(".")[0]
    return same_major and all(trace.type in BASIC_TRACES for f in figures for trace in f.data)


def plotly_script(figures: Sequence[go.Figure]) -> str:
    """One ``<script>`` with the plotly.js that draws ``figures``."""
    source = _basic() if basic_draws(figures) else get_plotlyjs()
    # "</script" inside the library would end the element early; plotly.js has none today.
    return (
        "<script type='text/javascript'>" + source.replace("</script", "<\\/script") + "</script>"
    )
