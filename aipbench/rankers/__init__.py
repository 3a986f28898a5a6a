"""The second-stage rankers of the paper (§3.2): one interface, one file each, and their training."""

__all__ = ["RANKER_NAMES"]

# The rankers in the paper's order (Table 4's columns); ``aipbench.rankers.registry.RANKERS`` holds their
# classes in this order (importing it imports torch; this name does not).
RANKER_NAMES = ("alexrank", "vbpr", "dvbpr", "amr")
