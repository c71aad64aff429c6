"""cfn-lint over build/, plus a variant whose nested TemplateURLs are local paths.

cfn-lint checks a parent's nested-stack Parameters against the child template (E3043) only when
TemplateURL is a plain local path, so the variant is rendered to a temporary folder and linted
too: a child parameter the root forgets, or one it passes that the child does not declare, fails
there. Templates are linted in parallel, one process per core.

Usage: python scripts/lint.py [--config FILE] [--build DIR]
Exit status: 0 when every template has no error and no warning.

`findings(template)` is the same check in-process, for callers that lint many templates (the
config fuzz test): cfn-lint's rules load once instead of once per process, and three of cfn-lint 1.58's
costs are paid once instead of at every property (_reuse_validator_classes, _keep_dataclass_fields,
_index_keywords); tests/test_build.py checks it finds what the command finds.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# W3002 warns that a TemplateURL is a local path that `aws cloudformation package` would upload;
# the local variant exists only so E3043 can read the children, it is never deployed.
LOCAL_VARIANT_IGNORES = ["W3002"]


def findings(template: str | Path, ignore: tuple[str, ...] = ()) -> list[str]:
    """cfn-lint's errors and warnings for one template: its text, or its file (nested-stack checks
    such as E3043 read the children beside a file, so the local-URL variant goes in as a path)."""
    from cfnlint.decode.decode import decode_str
    from cfnlint.runner.template.runner import run_template_by_file_path

    runner = _runner(tuple(ignore))
    if isinstance(template, Path):
        matches = run_template_by_file_path(str(template), runner.config, runner.rules, False)
    else:
        data, matches = decode_str(template)
        if not matches:
            matches = runner.validate_template(data)
    return [repr(match) for match in matches]


@functools.cache
def _runner(ignore: tuple[str, ...]):
    # The same configuration as the command line below: default rules and regions, no config file.
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    _reuse_validator_classes()
    _keep_dataclass_fields()
    runner = Runner(ConfigMixIn([], ignore_checks=list(ignore)))
    _index_keywords(type(runner.rules.data["E1101"]))  # the class as cfn-lint loaded it (from its file)
    return runner


@functools.cache
def _reuse_validator_classes() -> None:
    """One Validator class per distinct set of keyword validators, instead of one per call.

    cfn-lint 1.58's jsonschema rules extend their validator for every resource, output and parameter, and each
    extension (cfnlint.jsonschema.validators.create) declares a new dataclass: its methods written out and
    compiled anew, a fifth of the time it takes to lint this project's templates (the 200-service
    build: 14.8 s in one process, 11.1 s with the classes reused). The class depends only on
    the arguments, which are the same few sets over and over (the rules' bound methods, cfn-lint's functions),
    so equal arguments get the class made the first time. The findings are the same as the command's
    (tests/test_build.py compares them on templates with errors)."""
    from cfnlint.jsonschema import validators

    create, made = validators.create, {}

    def identity(mapping):
        # by object, not by equality: cfn-lint's rules compare equal by rule id and do not hash
        return tuple((name, getattr(f, "__func__", f), id(getattr(f, "__self__", None)))
                     for name, f in (mapping or {}).items())

    def reusing(validators=None, function_filter=None, fn_resolvers=None):
        # a rule's filter is made anew for each extension; its fields are what it is (a dataclass, never changed)
        key = (identity(validators), repr(function_filter), identity(fn_resolvers))
        if key not in made:
            # the arguments stay referenced with the class, so no id in a key is reused while it is cached
            made[key] = (create(validators, function_filter, fn_resolvers), validators, fn_resolvers)
        return made[key][0]

    validators.create = reusing  # Validator.extend calls the module's create


@functools.cache
def _keep_dataclass_fields() -> None:
    """The fields of a dataclass, worked out once per class.

    cfn-lint 1.58 makes each new context, validator and function filter with evolve(), which asks
    dataclasses.fields() for the class's fields every time: about 7 calls per property it checks, each building
    the same tuple again. Kept per class, linting the Compose corpus's builds takes 9% less (150 templates:
    10.0 -> 9.1 CPU-s). A class's fields do not change once it is made; an instance is looked up as before."""
    from cfnlint.context import context
    from cfnlint.jsonschema import _filter, validators

    of_class = functools.cache(dataclasses.fields)

    def fields(class_or_instance):
        return of_class(class_or_instance) if isinstance(class_or_instance, type) else dataclasses.fields(
            class_or_instance)

    for module in (context, _filter, validators):  # each imported `fields` from dataclasses by name
        module.fields = fields


@functools.cache
def _index_keywords(rule_class: type) -> None:
    """E1101 (cfnlint/rules/jsonschema/CfnLint.py) finds the rules for a schema's cfnLint keywords by index.

    For each keyword, cfn-lint 1.58 walks all ~205 child rules and each one's keywords to find the one or two
    that name it, at every property it checks: 12% of the time it takes to lint the Compose corpus's builds
    (150 templates: 9.5 -> 8.3 CPU-s by index). The rules, their order and what they are given stay the
    same; the index is made for each template, from the child rules as cfn-lint wires them for it (Rules.run
    initializes every rule, then wires the children, then checks)."""
    from cfnlint.jsonschema._utils import Unset

    initialize = rule_class.initialize

    def initialize_anew(self, cfn):
        self._by_keyword = None
        return initialize(self, cfn)

    def cfnLint(self, validator, keywords, instance, schema):  # noqa: N802 (cfn-lint's name)
        validator = validator.evolve(function_filter=validator.function_filter.evolve(add_cfn_lint_keyword=False))
        if getattr(self, "_by_keyword", None) is None:
            self._by_keyword = {}
            for rule in self.child_rules.values():
                if rule is not None and rule.id:
                    for keyword in rule.keywords:
                        self._by_keyword.setdefault(keyword, []).append(rule)
        for keyword in keywords:
            for rule in self._by_keyword.get(keyword, ()):
                for error in rule.validate(validator, keyword, instance, schema):
                    if error.rule is None and isinstance(error.validator, Unset):
                        error.rule = rule
                    yield error

    rule_class.initialize, rule_class.cfnLint = initialize_anew, cfnLint


def cfn_lint(templates: list[Path], ignore: list[str] = ()) -> tuple[int, str]:
    command = [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable"]
    if ignore:
        command += ["--ignore-checks", *ignore]
    run = subprocess.run([*command, "--", *map(str, templates)], capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr


def lint(build: Path, config: Path | None = None) -> int:
    started = time.perf_counter()
    templates = sorted(build.glob("*.yaml"))
    if not templates:
        print(f"no templates in {build}: run `make templates` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as local:
        render = [sys.executable, "-m", "templates_src", "build", "--local-urls", "--out", local]
        if config:
            render += ["--config", str(config)]
        subprocess.run(render, check=True, capture_output=True, cwd=ROOT)
        # cfn-lint's start-up dominates, so one process per core, each with a share of the templates.
        cores = os.cpu_count() or 2
        jobs = [(templates[i::cores], []) for i in range(min(cores, len(templates)))]
        jobs.append(([Path(local) / "main.yaml"], LOCAL_VARIANT_IGNORES))
        with ThreadPoolExecutor(max_workers=cores) as pool:
            results = list(pool.map(lambda job: cfn_lint(*job), jobs))
    failed = [(job, out) for job, (code, out) in zip(jobs, results) if code != 0]
    for (paths, _), out in failed:
        print(out.strip() or f"cfn-lint failed on {', '.join(map(str, paths))}")
    names = ", ".join(t.name for t in templates)
    status = "FAILED" if failed else "clean"
    print(f"cfn-lint: {len(templates)} templates ({names}) + local-URL variant of main.yaml: {status} "
          f"in {time.perf_counter() - started:.1f}s")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path)
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    args = parser.parse_args()
    return lint(args.build, args.config)


if __name__ == "__main__":
    sys.exit(main())
