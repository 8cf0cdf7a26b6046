"""The browser view: Datasette on the database, read-only, with the packaged metadata.

Only `app.py` imports Datasette (the optional `web` extra); `metadata.yaml`
beside it holds the canned queries, labels, search and hidden tables, and is
read through importlib.resources, so an installed wheel carries it. See
`aggregator/cli/browse.py` for the command and the decisions behind it.
"""
