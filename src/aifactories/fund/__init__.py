"""The fund: what capacity costs in euros and where the next euro should go.

Pure (no database, no web or CLI framework): the cost model of each partition
(``cost_model``), its data files (``data/``) and the investment optimiser (``investment``).
The books in euros and the programme's figures, which read the database, are in
``aifactories.services.fund``.
"""
