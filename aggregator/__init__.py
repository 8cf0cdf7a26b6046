"""aggregator: a deduplicating news-feed aggregator.

Articles come in from folders (and, later, feeds); repeated passages are found
with MinHash/LSH at the level of sentences, and articles that share passages
are grouped into story clusters stored in one SQLite file.
"""

__version__ = "0.1.0"
