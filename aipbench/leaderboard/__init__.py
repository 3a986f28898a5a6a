"""The static leaderboard: committed results (``leaderboard/results``) rendered with Jinja2."""

from aipbench.leaderboard.entries import Entry, load_entries
from aipbench.leaderboard.render import build_site, render

__all__ = ["Entry", "build_site", "load_entries", "render"]
