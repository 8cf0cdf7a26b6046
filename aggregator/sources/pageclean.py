"""Page cleaning: what of a full-text page is not its article.

trafilatura finds the main text of most pages, but three layouts of real
news pages get past it, and what they add is not harmless here: a reader's
comment or an ad carried by many pages of one site becomes a passage that
matches across unrelated stories, and a lead paragraph that is really the
headline shifts what the digest shows first. Each layout has a fixture in
`tests/data/pages/` and a test that failed before this stage existed; what
it changes on real pages, and costs, is in docs/benchmarks.md ("Full-text
page cleaning").

* **Comment threads inside `<article>`.** trafilatura drops containers whose
  class or id *starts* with "comment" (and Disqus' own ids), so
  `dsq-comment`, `user-comment`, `reader-comment`, a `discussion` block or a
  second `<article>` of comments before the story are read as text, the
  first comment then being the lead paragraph. `prune_page` removes every
  element whose class or id has a comment word (`_COMMENT_WORDS`) as one of
  its parts (split at `-`, `_` and lower-to-upper case), or that schema.org
  marks as a comment, unless the part is a state flag of the post
  (`comments-open`), and never an element holding the page's `<h1>`. Should
  that still take the story (no `<h1>`, the story's box named like a
  thread), htmltext.py reads the page again without this stage.
* **Ads in a side column of a table layout** (and ad boxes elsewhere). A
  `<td>` of ads beside the story's `<td>` is read as a paragraph of the
  story, first or last. Removed: elements whose class or id has an ad word
  (`_AD_WORDS`: `ad-slot`, `advert`, `sponsored`...) and blocks that *begin*
  with an ad label ("Advertisement", "Sponsored", "Anzeige"...) and are short
  (at most `AD_MAX_WORDS` words; a box named like an ad keeps its place past
  `AD_BOX_MAX_WORDS`). A story's body begins with its first
  sentence, not with a label, which is what keeps this from removing one;
  the climb from a label stops at a table cell, an `<aside>` or a list item.
* **The headline repeated as a paragraph.** `drop_title_repeats` drops a
  paragraph among the first `TITLE_REPEAT_SPAN` that equals the title (or
  the title less a " | Site" suffix), compared on words alone.

Cost: one pass over the elements, then a walk up from each label (at most
`MAX_LABELS`); the page has been through `htmllimits.py` first, so the tree
is bounded. What is removed is not a warning (it is the page doing what
pages do): it is logged at DEBUG.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger(__name__)

TITLE_REPEAT_SPAN = 3
AD_MAX_WORDS = 80
AD_BOX_MAX_WORDS = 300
MAX_LABELS = 50

_COMMENT_WORDS = frozenset(
    "comment comments commentlist disqus dsq reply replies respond discussion talkback".split()
)
# Parts that make a comment word a flag of the post, not a thread: "comments-open",
# "has-comments" (WordPress and Drupal themes put these on the story's own element).
_FLAG_WORDS = frozenset("open closed enabled disabled allowed status count number has".split())
_AD_WORDS = frozenset(
    "ad ads adv advert adverts advertisement advertisements advertising adslot adsense "
    "adunit dfp sponsor sponsored sponsors promo taboola outbrain".split()
)
_AD_LABELS = frozenset(
    (
        "ad",
        "ads",
        "advert",
        "advertisement",
        "advertisements",
        "advertising",
        "sponsored",
        "sponsored content",
        "sponsored links",
        "paid content",
        "paid post",
        "promoted",
        "promoted content",
        "anzeige",
        "publicité",
        "publicidad",
        "pubblicità",
        "reklame",
        "reklama",
    )
)
_LABEL_MAX_CHARS = 24  # longer than any label: the label test is a set lookup on short text
_NEVER_REMOVED = frozenset(("html", "head", "body", "main"))
_LABEL_STOPS = frozenset(("td", "th", "aside", "li"))
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PARTS = re.compile(r"[^a-z0-9]+")
_WORDS = re.compile(r"\w+")


def prune_page(root: Any) -> list[str]:
    """Remove comment threads and ad blocks from the page tree `root` (lxml, in
    place); one short description per removed element, for the debug log."""
    protected = _headline_ancestors(root)
    marked: list[tuple[Any, str]] = []
    labels: list[Any] = []
    for element in root.iter():
        if not isinstance(element.tag, str):  # comments, processing instructions
            continue
        if element in protected or element.tag in _NEVER_REMOVED:
            continue
        kind = _marked_as(element)
        if kind:
            marked.append((element, kind))
        elif (text := element.text) and len(text) <= _LABEL_MAX_CHARS and _key(text) in _AD_LABELS:
            labels.append(element)
    removed = []
    for element, kind in marked:
        if not _attached(element, root):  # inside one removed before it: gone already
            continue
        if kind == "comments" or _is_short(element, AD_BOX_MAX_WORDS):
            removed.append(_describe(element, kind))
            element.drop_tree()
    for label in labels[:MAX_LABELS]:
        block = _ad_block(label, protected) if _attached(label, root) else None
        if block is not None:
            removed.append(_describe(block, "ad label"))
            block.drop_tree()
    if removed:
        log.debug("removed from the page: %s", "; ".join(removed))
    return removed


def drop_title_repeats(paragraphs: Sequence[str], titles: Iterable[str]) -> tuple[str, ...]:
    """`paragraphs` less any among the first `TITLE_REPEAT_SPAN` that repeat a title."""
    keys = {key for title in titles for key in _title_keys(title)}
    keys.discard("")
    if not keys:
        return tuple(paragraphs)
    head = [p for p in paragraphs[:TITLE_REPEAT_SPAN] if _key(p) not in keys]
    return (*head, *paragraphs[TITLE_REPEAT_SPAN:])


def _headline_ancestors(root: Any) -> set[Any]:
    """The page's `<h1>`s (the first few) and every element holding one: what holds
    the headline holds the story, whatever its class says."""
    protected: set[Any] = set()
    for index, heading in enumerate(root.iter("h1")):
        if index == 5:
            break
        protected.add(heading)
        protected.update(heading.iterancestors())
    return protected


def _marked_as(element: Any) -> str | None:
    """ "comments" or "ad" when the element's class, id or schema.org type says so."""
    names = f"{element.get('class') or ''} {element.get('id') or ''}"
    for name in names.split():
        parts = set(_PARTS.split(_CAMEL.sub("-", name).lower()))
        if parts & _COMMENT_WORDS and not parts & _FLAG_WORDS:
            return "comments"
        if parts & _AD_WORDS:
            return "ad"
    kind = f"{element.get('itemtype') or ''} {element.get('itemprop') or ''}"
    if "Comment" in kind or "comment" in kind.split():
        return "comments"
    return None


def _ad_block(label: Any, protected: set[Any]) -> Any | None:
    """The largest block that begins with `label`'s text and is short, climbing
    from the label no further than a table cell, an aside or a list item; None
    if not even the label's own element qualifies."""
    said = _key(label.text)
    block = None
    node = label
    while node is not None and node not in protected and node.tag not in _NEVER_REMOVED:
        words = _leading_words(node, AD_MAX_WORDS)
        if len(words) > AD_MAX_WORDS or " ".join(words[: len(said.split())]) != said:
            break
        block = node
        if node.tag in _LABEL_STOPS:
            break
        node = node.getparent()
    return block


def _leading_words(node: Any, limit: int) -> list[str]:
    """The first words of the text under `node`, not many more than `limit` (so a
    whole story is never joined up only to be found too long)."""
    words: list[str] = []
    for text in node.itertext():
        words.extend(_WORDS.findall(text.casefold()))
        if len(words) > limit:
            break
    return words


def _is_short(node: Any, limit: int) -> bool:
    """Whether the text under `node` has `limit` words or fewer: what is marked as an
    ad but holds more is taken for the story in a box named so (Drupal's
    "node-promoted" was one, before that word left `_AD_WORDS`)."""
    return len(_leading_words(node, limit)) <= limit


def _attached(element: Any, root: Any) -> bool:
    """Whether `element` is still in the tree under `root` (not in a removed subtree)."""
    node = element
    while (parent := node.getparent()) is not None:
        node = parent
    return node is root


def _describe(element: Any, kind: str) -> str:
    names = " ".join(f'{a}="{element.get(a)}"' for a in ("id", "class") if element.get(a))
    return f"{kind}: <{element.tag}{' ' + names if names else ''}>"


def _title_keys(title: str) -> list[str]:
    """The title's key, and its key less a site name after the last separator."""
    keys = [_key(title)]
    for separator in (" | ", " - ", " – ", " — ", " :: "):
        head, found, _ = title.rpartition(separator)
        if found:
            keys.append(_key(head))
    return keys


def _key(text: str) -> str:
    """Text compared on its words alone: case, punctuation and spacing set aside."""
    return " ".join(_WORDS.findall(text.casefold()))
