"""Seeds derived from names, so that a run's random choices are the same on any worker, in any order."""

from __future__ import annotations

import hashlib


def derive_seed(*parts) -> int:
    """A stable 63-bit seed from parts (run seed, prompt id, sample index): reproducible anywhere."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
