"""Options several commands share."""

from __future__ import annotations

import click

from aipbench.protocol import DEFAULT_PROTOCOL

__all__ = ["chosen_protocol", "device_option", "memory_limit_option", "protocol_option", "renamed",
           "sandbox_limits"]

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


def protocol_option(*, default: str | None = DEFAULT_PROTOCOL):
    """``--protocol NAME|FILE`` (the same option on every command), with the positional PROTOCOL of earlier
    releases kept as a deprecated alias (``legacy_protocol``; ``chosen_protocol`` merges the two)."""
    shown = f" [default: {default}]" if default else ""

    def decorate(f):
        f = click.option("--protocol", "protocol", default=None, metavar="NAME|FILE",
                         help=f"Protocol name or .toml file.{shown}")(f)
        return click.argument("legacy_protocol", required=False, metavar="[PROTOCOL]")(f)

    return decorate


def chosen_protocol(protocol: str | None, legacy_protocol: str | None, *, default: str | None = DEFAULT_PROTOCOL) -> str:
    """The protocol a command runs on: ``--protocol``, else the deprecated positional (with a warning), else
    ``default`` (None: the option is required)."""
    ctx = click.get_current_context()
    if legacy_protocol is not None:
        if protocol is not None and protocol != legacy_protocol:
            raise click.UsageError(f"two protocols given: {legacy_protocol!r} and --protocol {protocol!r}", ctx)
        command = " ".join(["aipbench", *ctx.command_path.split()[1:]])
        click.echo(f"Warning: the positional PROTOCOL is deprecated; use `{command} --protocol {legacy_protocol}`",
                   err=True)
        return legacy_protocol
    if protocol is None and default is None:
        raise click.UsageError("Missing option '--protocol'.", ctx)
    return protocol or default


def renamed(old: str, new: str):
    """A hidden ``old`` option kept as a deprecated alias of ``new`` (the callback warns and stores its value
    under ``<new>_alias``; ``pick`` merges the two)."""

    def warn(ctx: click.Context, param: click.Parameter, value):
        if value is not None:
            click.echo(f"Warning: {old} is deprecated; use {new} (the same meaning)", err=True)
        return value

    return click.option(old, f"{new.lstrip('-').replace('-', '_')}_alias", type=click.IntRange(min=1), default=None,
                        hidden=True, callback=warn, expose_value=True)
