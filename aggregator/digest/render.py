"""Render: a Digest as HTML, Markdown, plain text or an Atom feed.

What it decides, and why:

* **Feed text is data, never markup.** Every title, source name and paragraph
  is escaped for the format it lands in; only http and https addresses become
  links. The HTML body is then passed through nh3, an allow-list sanitiser
  (a handful of tags, `href` and `class` only, http/https/mailto links), so a
  mistake here still cannot let a script or a `javascript:` link through.
* **HTML is one self-contained file**: inline CSS, no scripts, no images, and
  a Content-Security-Policy that allows nothing but that stylesheet (by hash),
  so even injected markup could not load or run anything.
* **Atom is built by an XML serialiser** (ElementTree), never by string
  templates: feed text with `]]>`, `<` or control characters comes out as
  well-formed XML. One entry per story, whose `updated` moves when the story
  grows, so a feed reader shows each story once and again when it changes;
  an article without a partner is an entry of its own.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import textwrap
import xml.etree.ElementTree as ET

import nh3

from aggregator.digest.select import Digest, Event, Single, Story
from aggregator.model import DigestArticle
from aggregator.plural import counted

ATOM = "http://www.w3.org/2005/Atom"
_TAGS = {"h1", "h2", "h3", "h4", "p", "a", "ul", "li", "section", "small", "em", "strong", "div"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")

CSS = """
body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:42rem;padding:1rem;color:#222;
overflow-wrap:anywhere}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin:2rem 0 .25rem}h3{font-size:1rem;margin:1rem 0 0}
small{color:#666}.sources{margin:.25rem 0;padding-left:1.2rem;font-size:.9rem}
.new{border-left:3px solid #3a7;padding-left:.75rem}.single p{margin:.25rem 0}
.event{border-top:1px solid #ccc;margin-top:1.5rem}
a{color:#0645ad}@media (prefers-color-scheme:dark){body{background:#111;color:#ddd}a{color:#8ab4f8}}
"""


def _clean_text(text: str) -> str:
    """Text without the control characters XML and mail headers cannot carry."""
    return _CONTROL.sub("", text)


def _one_line(text: str) -> str:
    return " ".join(_clean_text(text).split())


def _e(text: str) -> str:
    return html.escape(_clean_text(text), quote=True)


def _title(entry: DigestArticle) -> str:
    return _one_line(entry.title) or "(untitled)"


def when(stamp: str) -> str:
    """A stored time for people: "2026-11-23 15:10 UTC"."""
    return f"{stamp[:10]} {stamp[11:16]} UTC" if len(stamp) >= 16 else stamp


def heading(digest: Digest) -> str:
    return f"News digest {digest.start[:10]} to {digest.end[:10]}"


# -- HTML -------------------------------------------------------------------------------------


def _html_link(entry: DigestArticle, text: str) -> str:
    return f'<a href="{_e(entry.link)}">{_e(text)}</a>' if entry.link else _e(text)


def _event_line(event: Event) -> str:
    """What an event heading says under the title: how much reported it."""
    return (
        f"event story {event.story_id}: " if event.story_id is not None else ""
    ) + f"{counted(event.reports, 'report')} from {counted(event.sources, 'source')}"


def _html_story(story: Story, level: int = 2) -> str:
    """A passage story: an h2 of its own, or an h3 inside its event's section."""
    c = story.canonical
    parts = [
        f"<h{level}>{_html_link(c, _title(c))}</h{level}>",
        f"<small>{_e(c.source)}, {_e(when(c.published_at))}"
        + (" (update)" if story.is_update else "")
        + f"; {counted(story.sources, 'source')}</small>",
        '<ul class="sources">'
        + "".join(
            f"<li>{_html_link(e, e.source)} <small>{_e(when(e.published_at))}</small></li>"
            for e in story.articles
        )
        + "</ul>",
    ]
    parts += [f"<p>{_e(p)}</p>" for p in story.opening]
    if story.more:
        more = counted(story.more, "more paragraph")
        parts.append(f"<p><small>{more} in the original.</small></p>")
    for addition in story.additions:
        if not addition.paragraphs:
            continue
        parts.append(
            f'<div class="new"><h{level + 1}>New in '
            f"{_html_link(addition.entry, addition.entry.source)}: "
            f"{_e(_title(addition.entry))}</h{level + 1}>"
            + "".join(f"<p>{_e(p)}</p>" for p in addition.paragraphs)
            + "</div>"
        )
    if story.collapsed:
        collapsed = counted(story.collapsed, "repeated paragraph")
        parts.append(f"<p><small>{collapsed} collapsed.</small></p>")
    return "<section>" + "".join(parts) + "</section>"


def _sanitise(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=_TAGS,
        attributes={"a": {"href"}, "div": {"class"}, "ul": {"class"}, "section": {"class"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )


def _html_single(single: Single) -> str:
    e = single.entry
    return (
        f'<div class="single"><p>{_html_link(e, _title(e))} '
        f"<small>{_e(e.source)}, {_e(when(e.published_at))}</small></p>"
        f"<p>{_e(single.lead)}</p></div>"
    )


def _html_event(event: Event) -> str:
    """An event of several passage stories or articles under one heading."""
    lead = event.lead
    return (
        f'<section class="event"><h2>{_html_link(lead, _title(lead))}</h2>'
        f"<small>{_e(_event_line(event))}</small>"
        + "".join(_html_story(s, level=3) for s in event.stories)
        + (
            f"<h3>{'Also on this story' if event.stories else 'Reports'}</h3>"
            + "".join(_html_single(s) for s in event.singles)
            if event.singles
            else ""
        )
        + "</section>"
    )


def _html_body(digest: Digest) -> str:
    parts = [f"<h1>{_e(heading(digest))}</h1>"]
    if digest.empty:
        parts.append("<p>Nothing new in this period.</p>")
    for event in digest.events:
        if event.grouped:
            parts.append(_html_event(event))
        elif event.stories:
            parts.append(_html_story(event.stories[0]))
    if digest.also_reported:
        parts.append("<h2>Also reported</h2>")
        parts += [_html_single(s) for s in digest.also_reported]
    return _sanitise("".join(parts))


def to_html(digest: Digest) -> str:
    style = hashlib.sha256(CSS.encode()).digest()
    policy = (
        "default-src 'none'; "
        f"style-src 'sha256-{base64.b64encode(style).decode()}'; "
        "base-uri 'none'; form-action 'none'"
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_e(heading(digest))}</title><style>{CSS}</style></head>\n"
        f"<body>{_html_body(digest)}</body></html>\n"
    )


def story_html(story: Story) -> str:
    """One story as sanitised HTML (an Atom entry's content)."""
    return _sanitise(_html_story(story))


# -- Markdown and text ------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _one_line(text))


def _md_link(entry: DigestArticle, text: str) -> str:
    if not entry.link:
        return _md(text)
    target = entry.link.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    return f"[{_md(text)}]({target})"


def _md_single(single: Single) -> str:
    e = single.entry
    return f"- {_md_link(e, _title(e))} ({_md(e.source)}): {_md(single.lead)}"


def to_markdown(digest: Digest) -> str:
    lines = [f"# {_md(heading(digest))}", ""]
    if digest.empty:
        lines += ["Nothing new in this period.", ""]
    for event in digest.events:
        if event.grouped:
            lines += [f"## {_md_link(event.lead, _title(event.lead))}", ""]
            lines += [f"*{_md(_event_line(event))}*", ""]
            for story in event.stories:
                lines += _md_story(story, "###")
            if event.singles:
                also = "Also on this story" if event.stories else "Reports"
                lines += [f"### {also}", ""] + [_md_single(s) for s in event.singles] + [""]
        elif event.stories:
            lines += _md_story(event.stories[0], "##")
    if digest.also_reported:
        lines += ["## Also reported", ""] + [_md_single(s) for s in digest.also_reported]
        lines.append("")
    return "\n".join(lines)


def _md_story(story: Story, level: str) -> list[str]:
    """A passage story under a heading of `level` ("##"), its additions one deeper."""
    c = story.canonical
    update = " (update)" if story.is_update else ""
    lines = [
        f"{level} {_md_link(c, _title(c))}",
        "",
        f"*{_md(c.source)}, {when(c.published_at)}*{update}",
    ]
    lines += [""] + [f"- {_md_link(e, e.source)} {when(e.published_at)}" for e in story.articles]
    lines += [""] + [line for p in story.opening for line in (_md(p), "")]
    if story.more:
        lines += [f"*{counted(story.more, 'more paragraph')} in the original.*", ""]
    for addition in (a for a in story.additions if a.paragraphs):
        source = _md_link(addition.entry, addition.entry.source)
        lines += [f"{level}# New in {source}: {_md(_title(addition.entry))}", ""]
        lines += [line for p in addition.paragraphs for line in (f"> {_md(p)}", ">")][:-1]
        lines.append("")
    if story.collapsed:
        lines += [f"*{counted(story.collapsed, 'repeated paragraph')} collapsed.*", ""]
    return lines


def _wrap(text: str, indent: str = "") -> list[str]:
    """`text` in lines of 78 columns, broken only at spaces: a URL (or a word) longer
    than a line keeps a line of its own, whole, so that it can still be copied."""
    return textwrap.wrap(
        _one_line(text),
        78,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def to_text(digest: Digest) -> str:
    title = heading(digest)
    lines = [title, "=" * len(title), ""]
    if digest.empty:
        lines += ["Nothing new in this period.", ""]
    shown = [e for e in digest.events if e.grouped or e.stories]
    for n, event in enumerate(shown, start=1):
        if not event.grouped:
            lines += _text_story(event.stories[0], f"{n}.", "")
            continue
        lines += [*_wrap(f"{n}. {_title(event.lead)}"), f"   {_event_line(event)}", ""]
        for k, story in enumerate(event.stories, start=1):
            lines += _text_story(story, f"{n}.{k}", "   ")
        if event.singles:
            lines += ["   Also on this story:" if event.stories else "   Reports:", ""]
            lines += [line for s in event.singles for line in _text_single(s, "   ")]
    if digest.also_reported:
        lines += ["Also reported", "-------------", ""]
        lines += [line for s in digest.also_reported for line in _text_single(s, "")]
    return "\n".join(lines)


def _text_single(single: Single, indent: str) -> list[str]:
    e = single.entry
    return [*_wrap(f"* {_title(e)} ({e.source}) {e.link or ''}", indent), ""]


def _text_story(story: Story, label: str, indent: str) -> list[str]:
    """A passage story numbered `label`, its lines indented by `indent` more."""
    c, inner = story.canonical, indent + "   "
    lines = [
        *_wrap(f"{label} {_title(c)}", indent),
        f"{inner}{_one_line(c.source)}, {when(c.published_at)}",
    ]
    for e in story.articles:
        lines += _wrap(f"- {e.source} {when(e.published_at)} {e.link or ''}", inner)
    lines.append("")
    for paragraph in story.opening:
        lines += [*_wrap(paragraph, inner), ""]
    if story.more:
        lines += [f"{inner}({counted(story.more, 'more paragraph')} in the original)", ""]
    for addition in (a for a in story.additions if a.paragraphs):
        new_in = f"New in {addition.entry.source}: {_title(addition.entry)}"
        lines += [*_wrap(new_in, inner), ""]
        for paragraph in addition.paragraphs:
            lines += [*_wrap(paragraph, inner + "| "), ""]
    if story.collapsed:
        lines += [f"{inner}({counted(story.collapsed, 'repeated paragraph')} collapsed)", ""]
    return lines


# -- Atom -------------------------------------------------------------------------------------


def to_atom(digest: Digest, feed_id: str, self_url: str | None = None) -> str:
    """An Atom 1.0 feed with one entry per story; `feed_id` is a stable URI."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = _clean_text(text)
        return element

    feed = ET.Element(f"{{{ATOM}}}feed")
    sub(feed, "id", feed_id)
    sub(feed, "title", "aggregator: stories")
    latest = max((s.latest for s in digest.stories), default=digest.end)
    sub(feed, "updated", latest)
    author = sub(feed, "author")
    sub(author, "name", "aggregator")
    if self_url:
        sub(feed, "link", rel="self", href=self_url)
    for story in digest.stories:
        entry = sub(feed, "entry")
        sub(entry, "id", f"{feed_id}/story/{story.cluster_id}")
        sub(entry, "title", _title(story.canonical))
        sub(entry, "updated", story.latest)
        sub(entry, "published", story.canonical.first_seen_at)
        if story.canonical.link:
            sub(entry, "link", rel="alternate", href=story.canonical.link)
        sub(
            entry,
            "summary",
            f"{counted(story.sources, 'source')}: "
            + ", ".join(dict.fromkeys(_one_line(e.source) for e in story.articles)),
        )
        sub(entry, "content", story_html(story), type="html")
    for single in digest.singles:
        e = single.entry
        entry = sub(feed, "entry")
        sub(entry, "id", f"{feed_id}/article/{e.article_id}")
        sub(entry, "title", _title(e))
        sub(entry, "updated", e.first_seen_at)
        if e.link:
            sub(entry, "link", rel="alternate", href=e.link)
        sub(entry, "summary", f"{_one_line(e.source)}: {_one_line(single.lead)}")
    body = ET.tostring(feed, encoding="unicode", xml_declaration=False)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"
