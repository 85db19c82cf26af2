"""How an import shows itself on a terminal: a progress bar while it runs, then the summary
table (created, updated, unchanged, refused per table), every error and the warnings.

The command line (``referral-net import hsds``, ``import sheet``) uses these; the same report
as JSON is :meth:`ImportReport.as_json` (``--report FILE``, the HTTP job).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from referral_net.exchange.records import RECORD_TABLES, ImportReport, Problem

# Past this many warnings the listing is cut (the --report file always has them all).
WARNINGS_SHOWN = 50


@contextmanager
def import_progress(console: Console, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar of records read (the total is unknown: sources stream); yields the
    callback :func:`run_import` takes as ``on_progress``. Transient: it leaves no trace."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} records"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def advance(handled: int) -> None:
            progress.update(task, completed=handled)

        yield advance


def summary_table(report: ImportReport) -> Table:
    """Counts per table (tables in dependency order, then any other the report names)."""
    title = f"Import of {report.source}" + (" (dry run)" if report.dry_run else "")
    table = Table(title=title)
    table.add_column("table")
    for name in ("created", "updated", "unchanged", "refused"):
        table.add_column(name, justify="right")
    names: list[str] = [name for name in RECORD_TABLES if name in report.counts]
    names += sorted(set(report.counts) - set(names))
    for name in names:
        counts = report.counts[name]
        table.add_row(
            name,
            str(counts.created),
            str(counts.updated),
            str(counts.unchanged),
            str(counts.refused),
        )
    return table


def _problem_line(problem: Problem) -> str:
    where = f"{problem.table}, {problem.row}" + (f", {problem.field}" if problem.field else "")
    return f"{where}: {problem.message}"


def outcome_line(report: ImportReport) -> str:
    """One sentence: what happened to the database."""
    if report.dry_run:
        verdict = "dry run: nothing written"
    elif report.written:
        verdict = "written" if not report.errors else "written without the refused records"
    else:
        verdict = "refused: nothing written"
    return (
        f"{verdict} ({len(report.errors)} errors, {len(report.warnings)} warnings;"
        f" exit code {report.exit_code})"
    )


def print_report(report: ImportReport, console: Console) -> None:
    """The summary table, every error, the first warnings and the outcome."""
    console.print(summary_table(report))
    if report.errors:
        console.print(f"[bold red]Errors ({len(report.errors)}):[/]")
        for problem in report.errors:
            console.print(f"  {_problem_line(problem)}", markup=False, highlight=False)
    if report.warnings:
        console.print(f"[bold yellow]Warnings ({len(report.warnings)}):[/]")
        for problem in report.warnings[:WARNINGS_SHOWN]:
            console.print(f"  {_problem_line(problem)}", markup=False, highlight=False)
        if len(report.warnings) > WARNINGS_SHOWN:
            console.print(f"  ... {len(report.warnings) - WARNINGS_SHOWN} more (see --report FILE)")
    console.print(outcome_line(report), markup=False, highlight=False)


def write_report_file(report: ImportReport, path: Path) -> None:
    """The report as JSON (``--report FILE``)."""
    path.write_text(
        json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
