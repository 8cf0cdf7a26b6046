"""Sources: reading what comes in, into articles.

Folders of files (`folder`) and feeds over HTTP (`fetch` -> `parse`, with
`encoding`), and the text of each document: `extract` with its readers
(`plaintext`, Markdown, `htmltext` with `htmllimits`, `pagecut`,
`pageclean`) under the article `caps`; entry HTML (`entrytext`) and full-text
pages (`fulltext`) read in the killable `workers`; `discover` tells a feed
from a page. Imports only the core modules and storage.
"""
