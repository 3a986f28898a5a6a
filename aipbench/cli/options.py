"""Options several commands share."""

from __future__ import annotations

import click

__all__ = ["device_option"]

device_option = click.option(
    "--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]",
    help="Torch device for every step that computes (training, features, attacks, scoring); auto: CUDA where "
         "torch sees a GPU, else the CPU.")
