"""Defenses (paper §7): input transformations applied to every image a ranker sees."""
