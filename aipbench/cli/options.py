"""Options several commands share."""

from __future__ import annotations

import click

__all__ = ["device_option", "memory_limit_option", "sandbox_limits"]

device_option = click.option(
    "--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]",
    help="Torch device for every step that computes (training, features, attacks, scoring); auto: CUDA where "
         "torch sees a GPU, else the CPU.")

memory_limit_option = click.option(
    "--memory-limit", type=click.FloatRange(min=0.25), default=None, metavar="GIB",
    help="Memory each child running submitted code may use, in GiB (default: half of this machine's); its other "
         "limits are aipbench's defaults (docs/attacks.md, The sandbox).")


def sandbox_limits(memory_limit: float | None):
    """The children's limits for ``--memory-limit`` (None: the defaults)."""
    import dataclasses

    from aipbench.harness.isolation.limits import GiB, default_limits

    return None if memory_limit is None else dataclasses.replace(default_limits(), memory=int(memory_limit * GiB))
