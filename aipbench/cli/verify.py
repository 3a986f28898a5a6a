"""`aipbench verify`: re-run an entry on a random subset of its cold items and compare item by item, or score it
on the protocol's held-out build."""

from __future__ import annotations

from pathlib import Path

import click

from aipbench.cli.options import device_option, memory_limit_option, renamed, sandbox_limits

__all__ = ["verify"]


@click.command()
@click.argument("results_file", type=click.Path(path_type=Path))
@click.option("--draw", type=click.IntRange(min=1), default=100, show_default=True,
              help="Cold items to re-run, drawn at random from the set the entry evaluated (as the protocol defines it).")
@renamed("--items", "--draw")
@click.option("--seed", type=int, default=None, help="Seed of the draw (default: a random one, recorded).")
@click.option("--held-out", "seed_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Maintainers: instead, score the entry on the protocol's held-out build made from this secret seed "
                   "file (`aipbench prepare --protocol PROTOCOL --seed-file`), on every cold item it evaluated; the record goes to "
                   "<protocol>/held-out/<name>.json and the site ranks by it.")
@click.option("--submission", "submission", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The entry's submission folder (default: submissions/<name> of this checkout); its hash must match.")
@click.option("--by", default=None, help="Who verifies (recorded; default: the user name).")
@click.option("--record", type=click.Path(path_type=Path), default=None,
              help="Where to write the record (default: <protocol>/verifications/<name>.json, or with --held-out "
                   "<protocol>/held-out/<name>.json, beside the entry).")
@click.option("--unsandboxed", is_flag=True, help="Run the attack code without the OS sandbox (trusted code only).")
@memory_limit_option
@device_option
def verify(results_file: Path, draw: int, draw_alias: int | None, seed: int | None, seed_file: Path | None, submission: Path | None,
           by: str | None, record: Path | None, unsandboxed: bool, memory_limit: float | None, device: str) -> None:
    """Re-run RESULTS_FILE's submission on a seeded random subset of its cold items, on every ranker it
    reports, and compare each item's HR@N with the entry's per-item CSV (and the entry's rows with that CSV).
    Writes the verification record either way; exit 1 if it fails."""
    from aipbench.errors import InputError
    from aipbench.harness.isolation.limits import using_limits

    isolation = "process" if unsandboxed else None
    with using_limits(sandbox_limits(memory_limit)):
        if seed_file is not None:
            from aipbench.leaderboard.heldout import score_held_out

            result = score_held_out(results_file, seed_file=seed_file, submission=submission, by=by, record=record,
                                    device=device, isolation=isolation, log=click.echo)
            scores = ", ".join(f"{r['ranker']} {r['delta_hr']:+.4f}" for r in result["results"])
            click.echo(f"held-out ΔHR@{result['hit_rank']}: {scores}; record written to {result['record']}")
            return
        from aipbench.leaderboard.verify import verify_entry

        result = verify_entry(results_file, items=draw_alias or draw, seed=seed, submission=submission, by=by, record=record,
                              device=device, isolation=isolation, log=click.echo)
    if not result["passed"]:
        first = (result["self_consistency"] or [""])[0] or (
            "item {item} on {ranker}: {column} claimed {claimed}, measured {measured}".format(**result["differences"][0]))
        raise InputError(f"{results_file}: verification failed: {len(result['self_consistency'])} rows disagree with "
                         f"the entry's own CSV, {result['n_differences']} item numbers with the re-run (first: "
                         f"{first}); record written to {result['record']}")
    click.echo(f"verified: {len(result['items'])} items x {len(result['rankers'])} rankers within tolerance "
               f"(largest difference {result['max_difference']:.4g}); record written to {result['record']}")
