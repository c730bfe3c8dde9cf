"""Feedback stages: callable classes that map a batch (dict of column -> list) to a batch.

They know nothing of Ray: `__init__` loads what it needs once, `__call__` is pure per batch, and
each declares the columns it `reads` and `writes` (names from schema.py). A row that cannot be
processed keeps flowing with a reason in the `error` column; `pipeline/` quarantines it.
"""
