"""Publish: a digest's period, its files, the stories feed, and the mail.

What it decides:

* **Periods.** `--date` is a whole local day in `daemon.timezone`; `--since`
  a duration back from now (`90m`, `24h`, `2d`). The daemon's daily job
  publishes the day that just ended.
* **Files** are written to a temporary name and renamed into place, so a
  reader (a web server, a mail job) never sees half a digest; dated files
  (`digest-YYYY-MM-DD.html`) beyond the newest `keep` are removed.
* **The stories feed** (`atom_file` in the digest directory) covers the last
  `atom_days`; its id is a UUID made once per database and kept in `meta`,
  so subscribers keep their read state across restarts.
* **Mail**: SMTP with STARTTLS (or TLS, or none for a local relay), user and
  password from `AGGREGATOR_SMTP_USER` / `AGGREGATOR_SMTP_PASSWORD`, never
  from the file; a multipart message with the text and HTML versions. No feed
  text reaches a header: the subject is built from dates and counts only.
* **Time is given, not read**: periods, the stories feed and the mail's date
  take `now` from the caller (the mail's defaults to the clock), so each can
  be tested at a fixed moment. The database is read through `store.digests`.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import tempfile
import uuid
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from aggregator.config import Config
from aggregator.digest.render import heading, to_atom, to_html, to_markdown, to_text
from aggregator.digest.select import Digest, build_digest
from aggregator.errors import DigestError
from aggregator.storage.protocol import Store

RENDERERS = {"html": to_html, "md": to_markdown, "text": to_text}
SUFFIX = {"html": "html", "md": "md", "text": "txt", "atom": "atom"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")
_UNIT = {"m": 60, "h": 3600, "d": 86400}


def day_period(day: date, zone: str) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day, in UTC."""
    tz = zoneinfo.ZoneInfo(zone)
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def digest_due(now: datetime, digest_time: str, zone: str) -> tuple[datetime, date]:
    """When the daily digest was last due (`digest_time` in `zone`, not after `now`),
    in UTC, and the local day it covers: the day before. A daemon that was not
    running then (a restart, a new install) writes it late rather than never."""
    tz = zoneinfo.ZoneInfo(zone)
    local = now.astimezone(tz)
    hour, minute = (int(part) for part in digest_time.split(":"))
    due = datetime.combine(local.date(), time(hour, minute), tz)
    if due > local:
        due = datetime.combine(local.date() - timedelta(days=1), time(hour, minute), tz)
    return due.astimezone(UTC), due.date() - timedelta(days=1)


def since_period(duration: str, now: datetime) -> tuple[datetime, datetime]:
    match = _DURATION.match(duration)
    if not match:
        raise DigestError(f"--since {duration!r}: expected a duration like 90m, 24h or 2d")
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    return now - timedelta(seconds=seconds), now + timedelta(seconds=1)


def feed_id(store: Store) -> str:
    """This database's stories-feed id, made on first use: a random UUID URN."""
    return store.digests.feed_id(lambda: f"urn:uuid:{uuid.uuid4()}")


def render(digest: Digest, fmt: str, store: Store) -> str:
    if fmt == "atom":
        return to_atom(digest, feed_id(store))
    return RENDERERS[fmt](digest)


def write_atomically(path: Path, text: str, create_folder: bool = False) -> None:
    """Write `text` to `path` whole or not at all (a temporary file renamed over it).

    Its folder must exist, unless `create_folder` (the configured digest folder,
    the service's own; never a path typed with --out, where a missing folder is a
    typo): `DigestError` then, naming the path.
    """
    if create_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise DigestError(f"{path}: folder {path.parent} does not exist (create it first)")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp makes the file private; the result gets what the umask allows.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(handle, 0o666 & ~umask)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def publish_day(store: Store, config: Config, day: date, now: datetime | None = None) -> list[Path]:
    """The daemon's daily job: the day's digest files, the stories feed, the mail
    (dated `now`, by default the clock's time)."""
    start, end = day_period(day, config.daemon.timezone)
    digest = build_digest(store, start, end)
    directory = config.digest.directory
    written = []
    for fmt in config.digest.formats:
        path = directory / f"digest-{day.isoformat()}.{SUFFIX[fmt]}"
        write_atomically(path, render(digest, fmt, store), create_folder=True)
        written.append(path)
    written.append(write_stories_feed(store, config, end))
    _prune(directory, config.digest.keep)
    if config.digest.mail_to:
        send_mail(digest, config, now)
    return written


def write_stories_feed(store: Store, config: Config, now: datetime) -> Path:
    """The stories feed: the last `atom_days`, or the newest `atom_max_articles`
    arrivals if those began later (with the stories they belong to)."""
    # Stored times have whole seconds: the end is the next one, so that what
    # arrived in this very second is in.
    end = now + timedelta(seconds=1)
    start = end - timedelta(days=config.digest.atom_days)
    nth_newest = store.digests.nth_newest_arrival(config.digest.atom_max_articles, before=end)
    if nth_newest is not None:
        start = max(start, nth_newest)
    recent = build_digest(store, start, end)
    path = config.digest.directory / config.digest.atom_file
    write_atomically(path, to_atom(recent, feed_id(store)), create_folder=True)
    return path


def _prune(directory: Path, keep: int) -> None:
    by_suffix: dict[str, list[Path]] = {}
    for path in directory.glob("digest-????-??-??.*"):
        by_suffix.setdefault(path.suffix, []).append(path)
    for paths in by_suffix.values():
        for old in sorted(paths)[:-keep]:
            old.unlink(missing_ok=True)


def mail_message(digest: Digest, config: Config, now: datetime | None = None) -> EmailMessage:
    """The digest as a multipart message (text and HTML), dated `now` (default: the clock)."""
    stories = len(digest.stories)
    message = EmailMessage()
    message["Subject"] = f"{heading(digest)}: {stories} {'story' if stories == 1 else 'stories'}"
    message["From"] = config.digest.mail_from
    message["To"] = ", ".join(config.digest.mail_to)
    message["Date"] = formatdate((now or datetime.now(UTC)).timestamp(), localtime=False)
    message["Message-ID"] = make_msgid(domain=config.digest.mail_from.rsplit("@", 1)[1])
    message.set_content(to_text(digest))
    message.add_alternative(to_html(digest), subtype="html")
    return message


def send_mail(digest: Digest, config: Config, now: datetime | None = None) -> None:
    """Send the digest to `mail_to` through the configured SMTP server (see the module)."""
    d = config.digest
    if not d.mail_to:
        raise DigestError("no recipients: set [digest] mail_to and smtp_host in the configuration")
    user = os.environ.get("AGGREGATOR_SMTP_USER")
    password = os.environ.get("AGGREGATOR_SMTP_PASSWORD", "")
    try:
        smtp: smtplib.SMTP
        if d.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(
                d.smtp_host, d.smtp_port, context=ssl.create_default_context(), timeout=60
            )
        else:
            smtp = smtplib.SMTP(d.smtp_host, d.smtp_port, timeout=60)
        with smtp:
            if d.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if user:
                smtp.login(user, password)
            smtp.send_message(mail_message(digest, config, now))
    except (OSError, smtplib.SMTPException) as e:
        raise DigestError(f"mail to {d.smtp_host}:{d.smtp_port}: {type(e).__name__}: {e}") from e
