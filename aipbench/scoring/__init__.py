"""Scoring: base-set metrics (paper §3.3, §5.2), significance, image quality, rankers' clean quality."""
