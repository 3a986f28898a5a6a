"""Rankers: the first-stage BPR and the visually-aware second-stage models."""
