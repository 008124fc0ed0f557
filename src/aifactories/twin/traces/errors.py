"""The one error a trace reader raises for a row it cannot read.

``TraceError`` is an :class:`~aifactories.domain.errors.InvalidInput`, so the API answers 422 and
the CLI prints the message as is. The message names the file, the line and the field, and quotes
the offending value, so the person holding the trace can open it at that line and fix it::

    philly.csv:1234: num_gpus: 'abc' is not a whole number
"""

from __future__ import annotations

from pathlib import Path

from aifactories.domain.errors import InvalidInput


class TraceError(InvalidInput):
    """A row of a trace file is malformed.

    ``file`` is the path as given, ``line`` the 1-based physical line, ``field`` the column name
    (``"row"`` when the whole row is wrong, e.g. its field count) and ``problem`` what is wrong.
    """

    code = "invalid_trace"

    def __init__(self, file: str | Path, line: int, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.file = str(file)
        self.line = line
        self.problem = problem
        # The base class says "field: problem"; a trace row also needs where it is.
        self.message = f"{Path(file).name}:{line}: {field}: {problem}"
        self.args = (self.message,)
