"""The fund's use cases: the books in euros, the programme's figures over a period, and the
investment plans (``aif invest``), over the pure ``aifactories.fund``."""
