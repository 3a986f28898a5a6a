"""`aipbench evaluate`: score a submission against the rankers of a protocol and write its results."""

from __future__ import annotations

from pathlib import Path

import click

from aipbench.protocol import DEFAULT_PROTOCOL

__all__ = ["evaluate"]


@click.command("evaluate")
@click.argument("submission", type=click.Path(path_type=Path))
@click.option("--protocol", default=DEFAULT_PROTOCOL, show_default=True, help="Protocol name or .toml file.")
@click.option("--rankers", "names", default=None, metavar="A,B", help="Only these rankers (default: all four).")
@click.option("--device", default="cpu", show_default=True, help="Torch device for attacks and scoring (cpu, cuda).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Results JSON (default: results/<protocol>/<submission>.json); the per-item CSV goes beside it.")
@click.option("--eps", "epsilons", default=None, metavar="E1,E2,...",
              help="Evaluate a bounded attack at several L∞ budgets (8-bit units), e.g. 4,8,16,32.")
@click.option("--items", type=click.IntRange(min=1), default=None,
              help="Only the first N cold items of the protocol's sample (attacks: default all; defenses: 100).")
@click.option("--levels", default=None, metavar="L1,L2,...", help="Defenses: evaluate only these levels of the family.")
@click.option("--time-limit", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Time limit of each attack run of a code submission (default: 3600).")
def evaluate(submission: Path, protocol: str, names: str | None, device: str, out: Path | None,
             epsilons: str | None, items: int, levels: str | None, time_limit: float | None) -> None:
    """Evaluate SUBMISSION (a folder with a submission.toml) on a protocol, preparing what is missing.

    Runs the attack against each ranker (a code submission in a child process that receives only what
    its knowledge level grants; finished images are kept, so an interrupted run resumes), scores
    cooperative and adversarial cold items over all users, prints a table and writes the results.
    """
    from aipbench.harness import evaluate as run
    from aipbench.protocol import load_protocol
    from aipbench.submission import load_submission

    sub = load_submission(submission)
    proto = load_protocol(protocol)
    target = out or Path("results") / proto.name / f"{sub.submission.name}.json"
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    rankers = [n.strip() for n in names.split(",") if n.strip()] if names else None
    if sub.submission.kind == "defense":
        return _defense(sub, protocol, rankers, device, target, items or 100, levels, time_limit, log)
    budgets = _int_list(epsilons, "--eps")
    results = run(sub, protocol=protocol, rankers=rankers, device=device, out=target, time_limit=time_limit,
                  epsilons=budgets, items=items, log=log)
    doc = results.document
    eps = ",".join(str(e) for e in sorted({r["epsilon"] for r in doc["results"] if r["epsilon"] is not None}))
    click.echo(f"{doc['submission']['name']} ({doc['submission']['knowledge']}, "
               f"{doc['submission']['threat']['norm']}{f' eps={eps}' if eps else ''}) on "
               f"{doc['protocol']['name']} ({doc['protocol']['sha256'][:12]}): cold items over all users")
    click.echo(results.table())
    click.echo(f"wrote {target} (+ .items.csv, .examples.png)")


def _defense(sub, protocol, rankers, device, target, items, levels, time_limit, log) -> None:
    from aipbench.defenses.evaluate import evaluate_defense
    from aipbench.defenses.report import format_defense
    from aipbench.results import write_document

    chosen = _int_list(levels, "--levels")
    doc = evaluate_defense(sub, protocol=protocol, rankers=rankers, device=device, items=items, levels=chosen,
                           time_limit=time_limit, log=log)
    write_document(doc, target)
    click.echo(format_defense(doc))
    click.echo(f"wrote {target}")


def _int_list(text: str | None, option: str) -> list[int] | None:
    try:
        return [int(v) for v in text.split(",") if v.strip()] if text else None
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers", param_hint=option) from None
