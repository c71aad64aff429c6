"""docs/compose.md is what scripts/compose_report.py makes of tests/compose/ now: a change to the import or
the corpus that changes a figure on the page fails here until `make compose-report` is run and committed."""
from __future__ import annotations

import importlib.util
import json
import sys

from helpers import ROOT

from templates_src.compose import context

SPEC = importlib.util.spec_from_file_location("compose_report", ROOT / "scripts" / "compose_report.py")
report = importlib.util.module_from_spec(SPEC)
sys.modules["compose_report"] = report  # its dataclass looks its module up there
SPEC.loader.exec_module(report)


def test_the_committed_page_is_a_fresh_run():
    committed = (ROOT / "docs" / "compose.md").read_text()
    assert committed == report.page(report.rows()), "docs/compose.md is stale: run make compose-report"


def test_every_project_has_a_verdict_and_only_refused_ones_lack_a_config():
    rows = report.rows()
    assert len(rows) == len(json.loads((report.CORPUS / "sources.json").read_text()))
    for row in rows:
        assert row.verdict in ("runs as is", "runs after the listed steps") or row.verdict.startswith("refused"), row
        assert (row.imported is None) == row.verdict.startswith("refused:"), row
        assert (row.verdict == "runs as is") == (row.steps == "nothing"), row


def test_a_warning_no_pattern_knows_is_a_step_not_silence():
    unknown = context.Finding("web", "sysctls", "something the import has never said")
    assert report.kind(unknown) is not None and "other" in report.kind(unknown)
    assert report.kind(context.Finding("web", "build", "built from context .: build it ...")).startswith("build")
    assert report.kind(context.Finding("web", "deploy.resources.limits.cpus", "no CPU limit in Compose: 256")) is None


def test_no_path_of_this_checkout_reaches_the_page():
    assert str(ROOT) not in report.page(report.rows())


def test_the_readme_quotes_the_page_s_figures():
    verdicts = [row.verdict.split(":")[0] for row in report.rows()]
    figures = (f"of the {len(verdicts)}, {verdicts.count('runs as is')} runs as is, "
               f"{verdicts.count('runs after the listed steps')} after the listed steps, "
               f"{sum(v.startswith('refused') for v in verdicts)} are refused ({verdicts.count('refused')} by the "
               f"import, {verdicts.count('refused by the build')} by the build)")
    assert figures in " ".join((ROOT / "README.md").read_text().split()), figures


def test_the_readme_counts_the_projects_deployed_on_the_emulator_as_the_corpus_test_does():
    """test_compose_corpus.py deploys every project the import does not refuse; the README names how many."""
    import test_compose_corpus as corpus

    deployed = len(corpus.IMPORTED)
    assert deployed == sum(not row.verdict.startswith("refused") for row in report.rows())
    assert f"builds each of the {deployed} that import" in " ".join((ROOT / "README.md").read_text().split())
