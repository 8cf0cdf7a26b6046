"""Digest: what a period shows, rendered and published.

`select` picks the stories and paragraphs, `render` writes text, Markdown,
HTML and Atom, `publish` the daily files, the stories feed and the mail.
"""
