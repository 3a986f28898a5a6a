"""The detector baseline — aipbench.defenses.detector.FeatureDetector."""

from aipbench.defenses.detector import FeatureDetector


class Detector(FeatureDetector):
    training_items = 300  # catalog items (never cold items) whose clean and attacked images it learns from
