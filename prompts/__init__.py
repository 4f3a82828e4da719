"""Prompt texts shipped with collab (installed as `collab.prompts`). Read them with `load`."""

from importlib import resources


def load(name: str) -> str:
    """The text of prompts/`name` (e.g. "collaborate.md")."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
