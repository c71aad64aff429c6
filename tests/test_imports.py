"""A build imports what it needs; what it defers still works the moment something uses it."""
from __future__ import annotations

import subprocess
import sys

from helpers import ROOT


def python(code: str, *argv: str) -> str:
    """Run code in a fresh interpreter, as `python -m templates_src` runs: a clean sys.modules."""
    run = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_a_build_never_runs_cfn_flip(tmp_path):
    # troposphere imports cfn_flip at its top; templates_src defers running it. If troposphere (or
    # anything a build imports) starts to read it at import, the deferral buys nothing: this fails.
    code = "import sys; from templates_src.__main__ import main; main(sys.argv[1:]); print(*sys.modules)"
    loaded = set(python(code, "build", "--out", str(tmp_path)).split())
    assert "cfn_flip" in loaded, "troposphere no longer imports cfn_flip: drop templates_src._defer"
    assert not {"cfn_flip.yaml_dumper", "cfn_tools", "cfn_clean", "logging"} & loaded
    assert "tempfile" not in loaded


def test_help_and_usage_errors_come_from_argparse():
    for argv, status, text in ((["build", "--help"], 0, "--local-urls"), (["build", "--oops"], 2, "unrecognized"),
                               ([], 2, "required")):
        run = subprocess.run([sys.executable, "-m", "templates_src", *argv], cwd=ROOT, capture_output=True, text=True)
        assert run.returncode == status and text in run.stdout + run.stderr, run.stdout + run.stderr


def test_deferred_cfn_flip_works_as_if_imported():
    code = ("import templates_src, troposphere; t = troposphere.Template(); t.set_description('d'); "
            "t.add_output(troposphere.Output('O', Value=troposphere.Sub('${AWS::Region}'))); "
            "from cfn_flip import to_json; import cfn_flip, sys; "
            "assert troposphere.cfn_flip is cfn_flip is sys.modules['cfn_flip']; "
            "print(t.to_yaml()); print(to_json(t.to_yaml()))")
    deferred = python(code)
    assert deferred == python(code.replace("import templates_src, ", "import "))
    assert "!Sub '${AWS::Region}'" in deferred and '"Fn::Sub": "${AWS::Region}"' in deferred
