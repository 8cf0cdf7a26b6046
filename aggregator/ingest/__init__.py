"""Ingest: documents through reading and dedup into storage.

`pipeline` (the `Ingester`) and `rematch`; feeds: `entries` (a feed's entries
as documents), `feeds` (subscriptions and their schedule), `poll` (the
`Poller`) and `feedcheck` (the check before subscribing).
"""
