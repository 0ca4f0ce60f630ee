"""Seeded random streams and fast categorical sampling.

Every (seed, purpose, day, log, chunk) gets its own independent numpy stream, so a chunk's
content never depends on what was generated before it: output is byte-stable and any
chunk can be produced in any order or thread.
"""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, purpose: str, *keys: int) -> np.random.Generator:
    """An independent stream; crc32 (not hash()) keeps the purpose tag stable across runs."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(purpose.encode()), *keys])))


class Sampler:
    """Draw indices with given weights by table lookup: O(1) per draw, no searchsorted.

    The weights are quantised to 1/resolution, which is plenty for mixes of a few to a few
    thousand categories; Zipf-like tails use `exact=True` (inverse CDF).
    """

    def __init__(self, weights: np.ndarray | list[float] | tuple[float, ...], *, exact: bool = False) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or len(w) == 0 or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be a non-empty vector of non-negative numbers")
        self.cdf = np.cumsum(w / w.sum())
        self.cdf[-1] = 1.0
        self.exact = exact or len(w) > 4096
        if not self.exact:
            resolution = 1 << 16
            points = (np.arange(resolution) + 0.5) / resolution
            self.table = np.searchsorted(self.cdf, points, side="right").astype(np.uint32)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.exact:
            idx = np.searchsorted(self.cdf, rng.random(n), side="right")
            return np.minimum(idx, len(self.cdf) - 1).astype(np.uint32)
        return self.table[rng.integers(0, len(self.table), n, dtype=np.uint32)]
