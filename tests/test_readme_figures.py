"""Each figure the README quotes is read here from the code or a run, so it cannot drift from them.

(The resource types the emulated deploy asserts, 37/39, are checked by tests/stacks/test_emulated_deploy.py,
and the Compose corpus's verdicts by tests/compose/test_compose_report.py, where those runs happen.)
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import test_emulated_deploy as emulated
from helpers import ROOT
from templates_src import plan
from templates_src.compose import command, explain
from templates_src.app import config, loading

README = " ".join((ROOT / "README.md").read_text().split())  # one line: figures wrap anywhere


def test_the_plan_assumptions_quoted_are_the_defaults():
    quoted = dict(re.findall(r"`--([a-z-]+-(?:lcus|gb))` \((\d+(?:\.\d+)?)", README))
    defaults = plan.Assumptions()
    assert set(quoted) == {"alb-lcus", "nlb-lcus", "log-gb", "efs-gb", "nat-gb", "ecr-gb", "exec-gb"}, quoted
    for option, figure in quoted.items():
        assert float(figure) == getattr(defaults, option.replace("-", "_")), option


def test_the_resource_types_quoted_are_the_built_ones():
    built = emulated.built_types()
    assert (f"each of the {len(built)} resource types present with its promised properties "
            f"({len(emulated.CONDITIONAL)} of them only under a condition: a domain, an alarm email)") in README


def test_the_resources_a_first_diff_lists_are_the_built_ones():
    built = [r for path in sorted(emulated.BUILD.glob("*.yaml"))
             for r in emulated.stacks.load(path.name)["Resources"].values()
             if r["Type"] != "AWS::CloudFormation::Stack"]  # a nested stack is listed by its resources
    always = sum("Condition" not in r for r in built)
    assert (f"diff: dks is not deployed: deploy would create {always} resources, and {len(built) - always} more "
            "where their conditions hold;") in README


def test_the_readme_says_how_the_dks_import_differs_from_the_hand_written_config(tmp_path):
    imported = command.import_file(ROOT / "tests" / "compose" / "corpus" / "dks" / "docker-compose.yaml",
                                   tmp_path / "app.yaml")
    (tmp_path / "app.yaml").write_text(explain.to_yaml(imported, "docker-compose.yaml"))
    for name, text in imported.file_contents.items():
        (tmp_path / name).write_text(text)
    ours, written = loading.load(tmp_path / "app.yaml"), loading.load(config.DEFAULT_CONFIG)
    assert [s.name for s in ours.services] == [s.name for s in written.services]

    def differing(a, b, skip=()) -> list[str]:
        return [f.name for f in dataclasses.fields(a)
                if f.name not in skip and getattr(a, f.name) != getattr(b, f.name)]

    parts = [f"{mine.name}'s {_listed(fields)}" for mine, theirs in zip(ours.services, written.services)
             if (fields := differing(mine, theirs))]
    parts.append(f"the app's {_listed(differing(ours, written, ('services', 'base_dir', 'file_contents')))}")
    assert f"it differs in {'; '.join(parts)}." in README, "; ".join(parts)


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def test_the_test_count_quoted_is_the_suite_s(request):
    count = len(request.session.items)  # this run's tests: the whole suite's when it runs whole, as in make test
    if f"`make test` runs the tests ({count:,} of them)" not in README:  # a part of it, or the README is wrong
        collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly"],
                                   cwd=ROOT, capture_output=True, text=True, timeout=600)
        count = int(re.search(r"^(\d+) tests? collected", collected.stdout, re.M).group(1))
    assert f"`make test` runs the tests ({count:,} of them)" in README, count
