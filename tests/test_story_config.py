"""`[stories]` in the configuration: parsed, checked, shown, and the story layer's
parameters built from it."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from aggregator.config import StoriesConfig
from aggregator.configfile import parse_config, render_config
from aggregator.errors import ConfigError
from aggregator.stories.assign import StoryParams

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_file_states_every_key_at_its_default() -> None:
    raw = tomllib.loads((REPO / "config" / "aggregator.toml").read_text(encoding="utf-8"))
    assert set(raw["stories"]) == {f.name for f in fields(StoriesConfig)}
    assert parse_config(raw, base=REPO).stories == StoriesConfig()


def test_the_defaults_are_the_story_layers_defaults() -> None:
    """The measured defaults live in one place each; they must not drift apart."""
    assert StoryParams.from_config(StoriesConfig()) == StoryParams()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"threshold": 0}, "config key stories.threshold: must be in (0, 1]"),
        ({"undated_threshold": 1.2}, "config key stories.undated_threshold: must be in (0, 1]"),
        ({"date_penalty": 1.5}, "config key stories.date_penalty: must be in [0, 1]"),
        ({"quiet_articles": -1}, "config key stories.quiet_articles: must be >= 0 (0: off)"),
        ({"name_weight": 0}, "config key stories.name_weight: must be > 0"),
        ({"thresold": 0.2}, "stories.thresold"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"stories": table}, base=REPO)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_config_show_round_trips_the_section() -> None:
    chosen = parse_config(
        {"stories": {"enabled": False, "threshold": 0.2, "quiet_articles": 0}}, base=REPO
    )
    shown = parse_config(tomllib.loads(render_config(chosen)), base=REPO)
    assert shown.stories == chosen.stories
    assert shown.stories.enabled is False
    params = StoryParams.from_config(shown.stories)
    assert (params.threshold, params.quiet_articles) == (0.2, 0)
