"""Storage: the database, its schema and its migrations.

The bottom layer above the core modules (errors, model, config): it imports
nothing from the packages above it. `store.Store` is the SQLite store;
`schema` holds the migrations, `dbfile` what SQLite's errors mean.
"""
