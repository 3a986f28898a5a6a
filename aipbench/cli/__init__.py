"""The `aipbench` command line: a thin click layer over the library, with lazily imported commands."""

from __future__ import annotations

import importlib
import signal
import sys

import click

from aipbench.errors import InputError

__all__ = ["main"]

# command name -> "module:attribute"; modules are imported only when their command runs, so that
# `aipbench --help` stays instant (no torch import).
COMMANDS = {
    "build": "aipbench.cli.build:build",
    "protocols": "aipbench.cli.protocols:protocols",
    "data": "aipbench.cli.data:data",
    "evaluate": "aipbench.cli.evaluate:evaluate",
    "leaderboard": "aipbench.cli.leaderboard:leaderboard",
    "prepare": "aipbench.cli.prepare:prepare",
    "rankers": "aipbench.cli.rankers:rankers",
    "reproduce": "aipbench.cli.reproduce:reproduce",
    "submission": "aipbench.cli.submission:submission",
    "verify": "aipbench.cli.verify:verify",
}


def _terminated(signum: int, frame) -> None:
    sys.exit(128 + signum)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from aipbench.registry import Registry

            commands: Registry[str] = Registry("command")
            for command in self.list_commands(ctx):
                commands.register(command)(command)
            try:
                commands.get(name)
            except InputError as err:
                ctx.fail(str(err))
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        # Library errors about user input become one line and exit status 1, never a traceback.
        from aipbench.errors import USER_ERRORS

        # SIGTERM unwinds like an exception, so builds remove their temporary folders on the way out
        # (SIGKILL cannot be caught: the next build removes what it left).
        signal.signal(signal.SIGTERM, _terminated)
        try:
            return super().invoke(ctx)
        except USER_ERRORS as err:
            from aipbench.harness.distributed import world

            if world().rank != 0:  # under torchrun every rank stops with the same error; rank 0 says it
                sys.exit(1)
            raise click.ClickException(str(err)) from None


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aipbench")
def main() -> None:
    """aipbench: a benchmark for Adversarial Item Promotion on visually-aware recommenders."""
