"""Counts in words: "1 source", "2 sources", "1 passage match", "3 passage matches".

Every count a person reads (the CLI, the digests, the daemon's log and status)
goes through `counted`, so no message says "1 sources". The nouns are the
package's own, all regular English plurals (-s; -es after ch/sh/s/x; -ies for a
consonant and y: "entry", "entries").
"""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, the noun plural unless `n` is 1."""
    if n == 1:
        return f"{n} {noun}"
    if noun.endswith(("ch", "sh", "s", "x")):
        return f"{n} {noun}es"
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"{n} {noun[:-1]}ies"
    return f"{n} {noun}s"
