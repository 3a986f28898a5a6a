"""The trained rankers' training functions, where they have always been importable from (the committed
reference submission ``submissions/amr`` imports ``train_amr`` from here; each now lives in its ranker's module)."""

from __future__ import annotations

from aipbench.rankers.amr import train_amr
from aipbench.rankers.dvbpr import train_dvbpr
from aipbench.rankers.fitting import catalog_auc
from aipbench.rankers.vbpr import train_vbpr

__all__ = ["catalog_auc", "train_amr", "train_dvbpr", "train_vbpr"]
