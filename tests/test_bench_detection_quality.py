"""The detection-quality benchmark (bench/detection_quality.py) writes a report whose figures add up.

One ``--quick`` run (a few faults of the catalogue, one seed, one generated date, each through the
real daily graph; the TAQ series) is shared by the tests. They check the report's shape and that
its counts agree with each other and with the summary ``main`` returns — not what the counts are.
"""

from __future__ import annotations

import re

import pytest

from bench import detection_quality
from cei_assets.sample_data import FAULTS

pytestmark = pytest.mark.slow
OTHER_SECTION = "<!-- another-bench:start -->\nanother benchmark's table\n<!-- another-bench:end -->\n"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("detection") / "benchmarks.md"
    out.write_text("# Benchmarks\n\n" + OTHER_SECTION)
    summary = detection_quality.main(["--quick", "--out", str(out)])
    section = out.read_text()
    return summary, section


def _fault_rows(section: str) -> dict[str, list[str]]:
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in FAULTS:
            rows[cells[0]] = cells
    return rows


def test_every_catalogue_fault_has_expected_checks_with_a_reason():
    assert set(detection_quality.EXPECTED_CHECKS) == set(FAULTS)
    for checks, reason in detection_quality.EXPECTED_CHECKS.values():
        assert checks and reason


def test_the_report_is_its_own_section_and_leaves_the_others_alone(quick):
    summary, text = quick
    assert OTHER_SECTION.strip() in text
    assert text.count(detection_quality.START_MARKER) == 1 and text.count(detection_quality.END_MARKER) == 1
    assert "Recall" in text and "Precision" in text and "Clean generated dates" in text
    assert summary["out"].endswith("benchmarks.md")


def test_each_quick_fault_has_a_row_whose_runs_are_detected_or_missed(quick):
    summary, text = quick
    rows = _fault_rows(text)
    assert set(rows) == set(detection_quality.QUICK_FAULTS)
    detected = missed = 0
    for fault, cells in rows.items():
        runs, hit, miss = int(cells[4].split()[0]), int(cells[5]), int(cells[6])
        assert hit + miss == runs, cells
        incidents = [] if cells[11] == "—" else cells[11].split(", ")
        assert len(incidents) == runs, cells
        assert summary["fault_incidents"][fault] == [int(n) for n in incidents]
        detected, missed = detected + hit, missed + miss
    assert (summary["detected"], summary["missed"]) == (detected, missed)
    assert detected >= 1, "a benchmark whose detector catches nothing must not pass"
    assert summary["fault_runs"] == detected + missed
    assert len(summary["missed_faults"]) == missed  # one seed: one entry per missed run


def test_recall_and_precision_follow_from_the_counts(quick):
    summary, text = quick
    assert summary["recall"] == pytest.approx(summary["detected"] / summary["fault_runs"])
    alarms = summary["true_alarms"] + summary["false_alarms_blocking"] + summary["false_alarms_warning"]
    assert summary["precision"] == pytest.approx(summary["true_alarms"] / alarms)
    shown = re.search(r"\*\*Recall ([\d.]+)%\*\*.*\*\*Precision ([\d.]+)%\*\*", text)
    assert shown, text
    assert float(shown.group(1)) == pytest.approx(100 * summary["recall"], abs=0.05)
    assert float(shown.group(2)) == pytest.approx(100 * summary["precision"], abs=0.05)


def test_clean_dates_and_real_series_are_counted(quick):
    summary, text = quick
    clean_rows = re.findall(r"^\| \d+ \| \d{4}-\d{2}-\d{2} \|", text, re.M)
    assert len(clean_rows) == summary["clean_days"] >= 1
    if detection_quality.REAL_DATA.joinpath("nvda-1999-2014.csv").is_file():
        assert summary["real_dates"] > 0
        assert f"{summary['real_blocking_false_alarms']} blocking false" in text
