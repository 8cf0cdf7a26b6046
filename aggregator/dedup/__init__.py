"""Dedup: articles into units, signatures, matches, passages and stories.

`segment` -> `signature` -> `index` -> `match` -> `decide` (with `passages`
and `background`) -> `cluster`. Imports sources and storage, never a package
above it.
"""
