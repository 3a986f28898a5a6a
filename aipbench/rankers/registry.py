"""Every ranker aipbench knows, by name, in table order (the paper's four first, in Table 4's order): each
module of this folder registers its own spec (``aipbench.rankers.spec``) as it is imported, and every module of
this folder is imported here, so a ranker added to aipbench is one new file. (Anyone's ranker outside aipbench
is a ranker submission, ``kind = "ranker"``: trained and judged in its sandbox.)"""

from __future__ import annotations

import importlib
import pkgutil

import aipbench.rankers
from aipbench.rankers.base import Ranker
from aipbench.rankers.spec import SPECS, RankerSpec

__all__ = ["ranker_class", "ranker_names", "ranker_spec", "ranker_specs"]

for _module in pkgutil.iter_modules(aipbench.rankers.__path__):
    importlib.import_module(f"aipbench.rankers.{_module.name}")


def ranker_specs(protocol=None) -> list[RankerSpec]:
    """The registered rankers in table order; of ``protocol`` only (those it has a section for, or that need
    none), where given."""
    specs = sorted((SPECS.get(name) for name in SPECS), key=lambda s: s.order)  # stable: registration order next
    return [s for s in specs if protocol is None or s.in_protocol(protocol)]


def ranker_names(protocol=None) -> list[str]:
    return [s.name for s in ranker_specs(protocol)]


def ranker_spec(name: str) -> RankerSpec:
    """The spec of the ranker ``name``; an unknown name is a one-line error with a did-you-mean."""
    return SPECS.get(name)


def ranker_class(name: str) -> type[Ranker]:
    return SPECS.get(name).ranker
