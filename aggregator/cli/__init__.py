"""The command line: `main` (the group and the core commands) and one module
per group of commands (`feeds`, `sources`, `daemon`, `browse`), `context` (what
every command shares) and `reports` (the listings they print).
"""
