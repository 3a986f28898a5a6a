"""The second-stage rankers by name, in the paper's order (Table 4's columns)."""

from __future__ import annotations

from aipbench.rankers import RANKER_NAMES
from aipbench.rankers.alexrank import AlexRank
from aipbench.rankers.amr import AMR
from aipbench.rankers.base import Ranker
from aipbench.rankers.dvbpr import DVBPR
from aipbench.rankers.vbpr import VBPR
from aipbench.registry import Registry

__all__ = ["RANKERS"]

RANKERS: Registry[type[Ranker]] = Registry("ranker")
for _cls in (AlexRank, VBPR, DVBPR, AMR):
    RANKERS.register(_cls.name)(_cls)
assert tuple(RANKERS.names()) == RANKER_NAMES
