"""The ``aif`` command line: a thin client of the REST API, plus local administration."""
