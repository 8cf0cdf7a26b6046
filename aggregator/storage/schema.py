"""The database schema, its migrations, and the MinHash parameters stored with it.

The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]` takes a
database from version i to i + 1, so a new release only appends. Table names
say what they hold, so that `sqlite-utils tables aggregator.db --counts` reads
as a description of the store:

* sources, articles (the current text), article_versions (every edit),
  paragraphs (per version), units (sentence runs inside paragraphs);
* unit_signatures: the MinHash signature and LSH band keys of every unit of a
  current version; this table is the persistent LSH index;
* passages and passage_carriers: one row per passage found in two or more
  articles, and one row per article carrying it (pointing at the earlier copy
  it was matched to, with the decision whether that match links the stories);
* clusters and cluster_members: the story clusters;
* views cluster_articles and duplicate_passages, and the FTS5 table
  articles_fts over articles' title and body (found by `sqlite-utils search`).
"""

from __future__ import annotations

SCHEMA_V1 = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sources (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('folder', 'feed')),
    location TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE articles (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    identity TEXT NOT NULL,
    location TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    published_at TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    UNIQUE (source_id, identity)
);
CREATE INDEX articles_published ON articles(published_at);

CREATE TABLE article_versions (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    published_at TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    UNIQUE (article_id, version)
);

CREATE TABLE paragraphs (
    id INTEGER PRIMARY KEY,
    version_id INTEGER NOT NULL REFERENCES article_versions(id) ON DELETE CASCADE,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    UNIQUE (version_id, position)
);
CREATE INDEX paragraphs_article ON paragraphs(article_id);

CREATE TABLE units (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    paragraph_id INTEGER NOT NULL REFERENCES paragraphs(id) ON DELETE CASCADE,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    word_count INTEGER NOT NULL,
    shingle_count INTEGER NOT NULL
);
CREATE INDEX units_paragraph ON units(paragraph_id);

CREATE TABLE unit_signatures (
    unit_id INTEGER PRIMARY KEY REFERENCES units(id) ON DELETE CASCADE,
    minhash BLOB NOT NULL,
    band_keys BLOB NOT NULL
);

CREATE TABLE passage_matches (
    id INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    paragraph_id INTEGER NOT NULL REFERENCES paragraphs(id) ON DELETE CASCADE,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    first_unit_id INTEGER NOT NULL,
    last_unit_id INTEGER NOT NULL,
    other_article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    other_paragraph_id INTEGER NOT NULL REFERENCES paragraphs(id) ON DELETE CASCADE,
    other_char_start INTEGER NOT NULL,
    other_char_end INTEGER NOT NULL,
    other_first_unit_id INTEGER NOT NULL,
    other_last_unit_id INTEGER NOT NULL,
    similarity REAL NOT NULL,
    boilerplate INTEGER NOT NULL DEFAULT 0,
    linked INTEGER NOT NULL DEFAULT 0,
    found_at TEXT NOT NULL
);
CREATE INDEX passage_matches_article ON passage_matches(article_id);
CREATE INDEX passage_matches_other ON passage_matches(other_article_id);

CREATE TABLE clusters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    canonical_article_id INTEGER REFERENCES articles(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    merged_into INTEGER REFERENCES clusters(id)
);

CREATE TABLE cluster_members (
    article_id INTEGER PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
    cluster_id INTEGER NOT NULL REFERENCES clusters(id),
    joined_at TEXT NOT NULL
);
CREATE INDEX cluster_members_cluster ON cluster_members(cluster_id);

CREATE VIEW cluster_articles AS
SELECT
    c.id AS cluster_id,
    a.id AS article_id,
    a.id = c.canonical_article_id AS canonical,
    s.name AS source,
    a.title,
    a.published_at,
    a.location
FROM clusters c
JOIN cluster_members m ON m.cluster_id = c.id
JOIN articles a ON a.id = m.article_id
JOIN sources s ON s.id = a.source_id
WHERE c.merged_into IS NULL
ORDER BY c.id, a.published_at, a.id;

CREATE VIEW duplicate_passages AS
SELECT
    pm.id AS match_id,
    round(pm.similarity, 3) AS similarity,
    pm.boilerplate,
    pm.article_id,
    sa.name AS source,
    a.title,
    a.location,
    p.position AS paragraph,
    substr(p.text, pm.char_start + 1, pm.char_end - pm.char_start) AS passage,
    pm.other_article_id,
    sb.name AS other_source,
    b.title AS other_title,
    b.location AS other_location,
    q.position AS other_paragraph,
    substr(q.text, pm.other_char_start + 1, pm.other_char_end - pm.other_char_start)
        AS other_passage
FROM passage_matches pm
JOIN articles a ON a.id = pm.article_id
JOIN sources sa ON sa.id = a.source_id
JOIN paragraphs p ON p.id = pm.paragraph_id
JOIN articles b ON b.id = pm.other_article_id
JOIN sources sb ON sb.id = b.source_id
JOIN paragraphs q ON q.id = pm.other_paragraph_id
ORDER BY pm.id;

CREATE VIRTUAL TABLE articles_fts USING FTS5 (title, body, content=[articles]);
CREATE TRIGGER articles_ai AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
CREATE TRIGGER articles_ad AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, body)
        VALUES ('delete', old.rowid, old.title, old.body);
END;
CREATE TRIGGER articles_au AFTER UPDATE OF title, body ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, body)
        VALUES ('delete', old.rowid, old.title, old.body);
    INSERT INTO articles_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
"""

# Version 2: feed sources and their polling state. `location` stays the
# subscribed URL (the source's identity); `url` is where it is fetched now
# (a permanent redirect moves it).
SCHEMA_V2 = """
ALTER TABLE sources ADD COLUMN url TEXT;
ALTER TABLE sources ADD COLUMN full_text TEXT NOT NULL DEFAULT 'auto'
    CHECK (full_text IN ('auto', 'always', 'never'));
ALTER TABLE sources ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE sources ADD COLUMN etag TEXT;
ALTER TABLE sources ADD COLUMN last_modified TEXT;
ALTER TABLE sources ADD COLUMN body_hash TEXT;
ALTER TABLE sources ADD COLUMN last_checked_at TEXT;
ALTER TABLE sources ADD COLUMN last_success_at TEXT;
ALTER TABLE sources ADD COLUMN last_error TEXT;
ALTER TABLE sources ADD COLUMN error_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sources ADD COLUMN next_check_at TEXT;
CREATE INDEX sources_due ON sources(next_check_at) WHERE kind = 'feed' AND enabled = 1;
"""

# Version 3: what a poll noticed without failing (a malformed but readable
# feed, article pages whose full text could not be had), and an entry's date as
# the feed wrote it when it was not used as is (in the future, or unreadable).
SCHEMA_V3 = """
ALTER TABLE sources ADD COLUMN last_warning TEXT;
ALTER TABLE articles ADD COLUMN published_raw TEXT;
"""

# Version 4: what the daemon last did (`aggregator status` reads it), one row
# per key: started_at, last_tick_at, last_tick, last_scan_at, last_digest_at...
SCHEMA_V4 = """
CREATE TABLE service_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

# Version 5: digests and the stories feed select articles by arrival, after
# every job that stored something; without this index each did a full scan.
SCHEMA_V5 = """
CREATE INDEX articles_first_seen ON articles(first_seen_at);
"""

# Version 6: a passage carried by N articles is one `passages` row and N
# `passage_carriers` rows, not N x N pairs (see passages.py for the decisions
# each carrier row records). The old pairs are superseded: the first writer that
# opens the database with its configuration re-decides every passage and story
# from the stored signatures (`rematch.py`, marked pending in meta), so nothing
# is re-read or re-signed. `articles.outlet` is who published an article as the
# article itself says (front matter, meta tags), for folders that hold many.
SCHEMA_V6 = """
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    first_published_at TEXT NOT NULL,
    last_published_at TEXT NOT NULL,
    carriers INTEGER NOT NULL DEFAULT 0,
    background INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE passage_carriers (
    id INTEGER PRIMARY KEY,
    passage_id INTEGER NOT NULL REFERENCES passages(id),
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    paragraph_id INTEGER NOT NULL REFERENCES paragraphs(id) ON DELETE CASCADE,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    first_unit_id INTEGER NOT NULL,
    last_unit_id INTEGER NOT NULL,
    edge INTEGER NOT NULL,
    matched_id INTEGER REFERENCES passage_carriers(id) ON DELETE SET NULL,
    similarity REAL,
    linked INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL
        CHECK (reason IN ('origin', 'linked', 'boilerplate', 'window', 'background')),
    found_at TEXT NOT NULL
);
CREATE INDEX passage_carriers_passage ON passage_carriers(passage_id);
CREATE INDEX passage_carriers_article ON passage_carriers(article_id);
CREATE INDEX passage_carriers_matched ON passage_carriers(matched_id);

DROP VIEW duplicate_passages;
DROP TABLE passage_matches;

CREATE VIEW duplicate_passages AS
SELECT
    c.id AS match_id,
    c.passage_id,
    round(c.similarity, 3) AS similarity,
    c.linked,
    c.reason,
    c.reason = 'boilerplate' AS boilerplate,
    c.article_id,
    sa.name AS source,
    a.title,
    a.location,
    p.position AS paragraph,
    substr(p.text, c.char_start + 1, c.char_end - c.char_start) AS passage,
    m.article_id AS other_article_id,
    sb.name AS other_source,
    b.title AS other_title,
    b.location AS other_location,
    q.position AS other_paragraph,
    substr(q.text, m.char_start + 1, m.char_end - m.char_start) AS other_passage
FROM passage_carriers c
JOIN passage_carriers m ON m.id = c.matched_id
JOIN articles a ON a.id = c.article_id
JOIN sources sa ON sa.id = a.source_id
JOIN paragraphs p ON p.id = c.paragraph_id
JOIN articles b ON b.id = m.article_id
JOIN sources sb ON sb.id = b.source_id
JOIN paragraphs q ON q.id = m.paragraph_id
ORDER BY c.id;

ALTER TABLE articles ADD COLUMN outlet TEXT;
INSERT INTO meta (key, value) SELECT 'rematch', 'pending'
    WHERE EXISTS (SELECT 1 FROM articles);
"""

# Version 7: a feed's own minimum interval between checks, in minutes, set with
# `sources set --min-interval`; NULL means the configuration's
# feeds.min_interval_minutes. It replaces that minimum for the feed and is still
# capped by feeds.max_interval_hours (feeds.py decides the schedule).
SCHEMA_V7 = """
ALTER TABLE sources ADD COLUMN min_interval_minutes REAL
    CHECK (min_interval_minutes IS NULL OR min_interval_minutes > 0);
"""

# Version 8: paragraphs are numbered from 1 wherever a person reads them: the
# duplicate_passages view now says what the CLI's text and JSON say ("paragraph 1"
# is the first), instead of the 0-based position stored in paragraphs.
SCHEMA_V8 = """
DROP VIEW duplicate_passages;

CREATE VIEW duplicate_passages AS
SELECT
    c.id AS match_id,
    c.passage_id,
    round(c.similarity, 3) AS similarity,
    c.linked,
    c.reason,
    c.reason = 'boilerplate' AS boilerplate,
    c.article_id,
    sa.name AS source,
    a.title,
    a.location,
    p.position + 1 AS paragraph,
    substr(p.text, c.char_start + 1, c.char_end - c.char_start) AS passage,
    m.article_id AS other_article_id,
    sb.name AS other_source,
    b.title AS other_title,
    b.location AS other_location,
    q.position + 1 AS other_paragraph,
    substr(q.text, m.char_start + 1, m.char_end - m.char_start) AS other_passage
FROM passage_carriers c
JOIN passage_carriers m ON m.id = c.matched_id
JOIN articles a ON a.id = c.article_id
JOIN sources sa ON sa.id = a.source_id
JOIN paragraphs p ON p.id = c.paragraph_id
JOIN articles b ON b.id = m.article_id
JOIN sources sb ON sb.id = b.source_id
JOIN paragraphs q ON q.id = m.paragraph_id
ORDER BY c.id;
"""

# Version 9: no trigger indexes a new article for full-text search one row at a
# time; the store indexes a transaction's new articles in one statement before
# it commits (search.py: 2.5x less time per article at 20 per transaction). The
# update and delete triggers stay.
SCHEMA_V9 = """
DROP TRIGGER IF EXISTS articles_ai;
"""

# Version 10: event stories (issue 16, aggregator/stories/): which articles report
# one event, above the passage clusters. A story's centroid is JSON (its strongest
# terms: key, weight, term), so a restart loads the open stories without text;
# `seq` rises with every change, so another process's changes can be caught up.
# event_terms holds the stream's document frequencies, saved now and then.
SCHEMA_V10 = """
CREATE TABLE IF NOT EXISTS event_stories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    articles INTEGER NOT NULL,
    event_days TEXT NOT NULL,
    terms TEXT NOT NULL,
    centroid TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_stories_seq ON event_stories(seq);
CREATE INDEX IF NOT EXISTS event_stories_last ON event_stories(last_at);

CREATE TABLE IF NOT EXISTS event_members (
    article_id INTEGER PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,
    story_id INTEGER NOT NULL REFERENCES event_stories(id),
    reason TEXT NOT NULL,
    score REAL NOT NULL,
    shared TEXT NOT NULL,
    event_day TEXT,
    days_apart INTEGER,
    joined_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_members_story ON event_members(story_id);

CREATE TABLE IF NOT EXISTS event_terms (
    term INTEGER PRIMARY KEY,
    documents INTEGER NOT NULL
);
"""

MIGRATIONS: tuple[str, ...] = (
    SCHEMA_V1,
    SCHEMA_V2,
    SCHEMA_V3,
    SCHEMA_V4,
    SCHEMA_V5,
    SCHEMA_V6,
    SCHEMA_V7,
    SCHEMA_V8,
    SCHEMA_V9,
    SCHEMA_V10,
)
SCHEMA_VERSION = len(MIGRATIONS)

# Every table of the final schema that holds data (not FTS5's own), in the order
# foreign keys allow: a table comes after every table its rows refer to.
TABLES = (
    "meta",
    "sources",
    "articles",
    "article_versions",
    "paragraphs",
    "units",
    "unit_signatures",
    "clusters",
    "cluster_members",
    "service_state",
    "passages",
    "passage_carriers",
    "event_stories",
    "event_members",
    "event_terms",
)
