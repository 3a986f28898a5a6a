"""`aipbench evaluate`: score a submission against the rankers of a protocol and write its results."""

from __future__ import annotations

from pathlib import Path

import click

from aipbench.cli.options import device_option, memory_limit_option, sandbox_limits
from aipbench.protocol import DEFAULT_PROTOCOL

__all__ = ["evaluate"]


def _int_list(ctx: click.Context, param: click.Parameter, text: str | None) -> list[int] | None:
    try:
        return [int(v) for v in text.split(",") if v.strip()] if text else None
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers", ctx, param) from None


@click.command("evaluate")
@click.argument("submission", type=click.Path(path_type=Path))
@click.option("--protocol", default=DEFAULT_PROTOCOL, show_default=True, help="Protocol name or .toml file.")
@click.option("--rankers", "names", default=None, metavar="A,B", help="Only these rankers (default: all the protocol's).")
@device_option
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Results JSON (default: results/<protocol>/<submission>.json); the per-item CSV goes beside it.")
@click.option("--eps", "epsilons", default=None, metavar="E1,E2,...", callback=_int_list,
              help="Evaluate a bounded attack at several L∞ budgets (8-bit units), e.g. 4,8,16,32.")
@click.option("--items", type=click.IntRange(min=1), default=None,
              help="Only the protocol's subset of N cold items (attacks: default all; defenses: 100).")
@click.option("--levels", default=None, metavar="L1,L2,...", callback=_int_list,
              help="Defenses: evaluate only these levels of the family.")
@click.option("--attacks", "attacks", default=None, metavar="A,B",
              help="Defenses and rankers: only these reference attacks (default: all of them).")
@click.option("--time-limit", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Time limit of each attack run of a code submission (default: 3600).")
@click.option("--unsandboxed", is_flag=True,
              help="Run a code submission in a plain child process where no bubblewrap sandbox can run (it could then "
                   "read the artifact cache and write where you can; the results record it).")
@memory_limit_option
@click.option("--replicas", type=click.IntRange(1, 10), default=1, show_default=True,
              help="Attacks: also attack and score replicas 2..R of each ranker (other training seeds, trained if "
                   "missing) and report the spread across them.")
@click.option("--skip-determinism-check", is_flag=True,
              help="Attacks: skip the reliability check that runs a code submission twice more on 10 items (the "
                   "results then do not list 'nondeterministic' among their checks).")
def evaluate(submission: Path, protocol: str, names: str | None, device: str, out: Path | None,
             epsilons: list[int] | None, items: int | None, levels: list[int] | None, attacks: str | None,
             time_limit: float | None,
             unsandboxed: bool, memory_limit: float | None, replicas: int, skip_determinism_check: bool) -> None:
    """Evaluate SUBMISSION (a folder with a submission.toml) on a protocol, preparing what is missing.

    An attack runs against each ranker (a code submission in a child process that receives only what
    its knowledge level grants; finished images are kept, so an interrupted run resumes); a defense is
    scored against every reference attack, transfer and adaptive; a ranker is trained in its sandbox and
    judged by every reference attack. Prints a table and writes the results.
    """
    from aipbench.harness.evaluate import evaluate as run
    from aipbench.harness.submission import load_submission
    from aipbench.protocol import load_protocol

    sub = load_submission(submission)
    target = out or Path("results") / load_protocol(protocol).name / f"{sub.submission.name}.json"
    rankers = [n.strip() for n in names.split(",") if n.strip()] if names else None
    results = run(sub, protocol=protocol, rankers=rankers, device=device, out=target, time_limit=time_limit,
                  epsilons=epsilons, items=items, levels=levels, replicas=replicas,
                  attacks=[a.strip() for a in attacks.split(",") if a.strip()] if attacks else None,
                  check_determinism=not skip_determinism_check, isolation="process" if unsandboxed else None,
                  limits=sandbox_limits(memory_limit), log=lambda m: click.echo(m, err=True))
    from aipbench.harness.distributed import world

    if world().rank != 0:  # under torchrun, rank 0 reports
        return
    doc = results.document
    if doc.get("kind", "attack") == "attack":
        eps = ",".join(str(e) for e in sorted({r["epsilon"] for r in doc["results"] if r["epsilon"] is not None}))
        click.echo(f"{doc['submission']['name']} ({doc['submission']['knowledge']}, "
                   f"{doc['submission']['threat']['norm']}{f' eps={eps}' if eps else ''}) on "
                   f"{doc['protocol']['name']} ({doc['protocol']['sha256'][:12]}): cold items over all users")
    click.echo(results.table())
    extra = " (+ .items.csv, .examples.png)" if doc.get("kind", "attack") == "attack" else ""
    click.echo(f"wrote {target}{extra}")
