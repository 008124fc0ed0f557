"""aifactories: Europe's network of AI factories run as one federation.

Public entry points live in the sub-packages; see docs/architecture.md for the layers.
"""

__version__ = "0.1.0"
