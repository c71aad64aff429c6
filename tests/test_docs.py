"""The ECS guide points at real resources: every `file.yaml/LogicalId` it names exists in build/."""
from __future__ import annotations

import re

import stacks
from helpers import BUILD, ROOT

GUIDE = ROOT / "docs" / "ecs-guide.md"
REFERENCE = re.compile(r"`?([a-z][a-z0-9-]*\.yaml)/([A-Z][A-Za-z0-9]+)`?")


def test_every_resource_the_guide_names_exists_in_build():
    named = REFERENCE.findall(GUIDE.read_text())
    assert len(named) >= 20, "the guide points at the templates"
    missing = [f"{file}/{logical}" for file, logical in named
               if logical not in stacks.load(file).get("Resources", {})]
    assert not missing


def test_the_guide_describes_every_built_stack():
    text = GUIDE.read_text()
    assert [p.name for p in sorted(BUILD.glob("*.yaml")) if f"| `{p.name}` |" not in text] == []


def test_every_test_the_threat_model_cites_exists():
    cited = set(re.findall(r"`(test_[a-z0-9_]+)`", (ROOT / "SECURITY.md").read_text()))
    assert len(cited) >= 15
    defined = {name for path in (ROOT / "tests").rglob("test_*.py")
               for name in re.findall(r"^def (test_[a-z0-9_]+)", path.read_text(), re.M)}
    assert sorted(cited - defined) == []
