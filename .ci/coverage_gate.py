"""Combine the coverage data of a test run, print the report and fail under the floors.

Usage: ``python .ci/coverage_gate.py [--report-only] DATA_DIR`` (``./dev test`` runs it; with
pytest options, which select a part of the suite, it only reports). The data comes from
``pytest --cov`` over the installed package, its subprocesses included (``patch =
subprocess`` in ``pyproject.toml``). Lines and branches have separate floors: raise them when
coverage rises, never lower them to let a change through.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import coverage

#: Lowest share of the installed package's lines the suite may execute, in percent.
LINE_FLOOR = 96.4
#: Lowest share of the installed package's branches the suite may take, in percent.
BRANCH_FLOOR = 91.0


def main(data_dir: str, *, gate: bool = True) -> int:
    folder = Path(data_dir).resolve()
    config = Path(__file__).resolve().parent.parent / "pyproject.toml"
    cov = coverage.Coverage(data_file=str(folder / "coverage"), config_file=str(config))
    if any(folder.glob("coverage.*")):  # data of subprocesses that ended after pytest-cov combined
        cov.combine([str(folder)], keep=False)
        cov.save()
    cov.load()
    # A subprocess started by "python -c"/"-m" in the repository imports the source tree, not the
    # installed package: its numbers would be of other files. Name them, so the test gets cwd="/".
    strays = sorted(name for name in cov.get_data().measured_files() if "site-packages" not in name)
    if strays:
        print(
            "coverage gate: a test ran the source tree instead of the installed package "
            f"(give its subprocess cwd='/'): {', '.join(strays[:5])}" + (" ..." if len(strays) > 5 else ""),
            file=sys.stderr,
        )
    cov.report(skip_covered=True, show_missing=True, skip_empty=True)
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "coverage.json"
        cov.json_report(outfile=str(report))
        totals = json.loads(report.read_text(encoding="utf-8"))["totals"]
    lines = 100.0 * totals["covered_lines"] / max(1, totals["num_statements"])
    branches = 100.0 * totals["covered_branches"] / max(1, totals["num_branches"])
    print(
        f"coverage of the installed package: lines {lines:.1f} % (floor {LINE_FLOOR} %), "
        f"branches {branches:.1f} % (floor {BRANCH_FLOOR} %)"
    )
    failed = [
        f"{what} {value:.2f} % is under the floor of {floor} %"
        for what, value, floor in (("lines", lines, LINE_FLOOR), ("branches", branches, BRANCH_FLOOR))
        if value < floor
    ]
    if strays:
        failed.append(f"{len(strays)} measured files are not the installed package's")
    if not gate:
        return 0
    for failure in failed:
        print(f"coverage gate: {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    report_only = "--report-only" in arguments
    paths = [argument for argument in arguments if argument != "--report-only"]
    if len(paths) != 1:
        print("usage: coverage_gate.py [--report-only] DATA_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(paths[0], gate=not report_only))
