"""sources.yaml, read by `make images`: a malformed file is one sentence and exit 2 (InputError), and
no value reaches git as an option."""
from __future__ import annotations

import dataclasses
import sys

import pytest
from helpers import ROOT

from templates_src.app import config, loading

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import images  # noqa: E402
from lifecycle.aws import InputError  # noqa: E402


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.delenv("DKS_API_DIR", raising=False)
    return dataclasses.replace(loading.load(config.DEFAULT_CONFIG), base_dir=tmp_path)


@pytest.mark.parametrize("text, fact", [
    ("dks-api: [git\n", "is not valid YAML at line"),
    ("- dks-api\n", "must map each repository"),
    ("dks-api: https://example.com/a.git\n", "dks-api must be a mapping"),
    ("dks-api: {commit: abc}\n", "dks-api needs git"),
    ("dks-api: {git: [a]}\n", "dks-api.git must be"),
    ("dks-api: {git: --upload-pack=touch /tmp/x}\n", "not starting with '-'"),
    ("dks-api: {git: https://example.com/a.git, ref: --force}\n", "dks-api.ref must be"),
    ("dks-api: {git: https://example.com/a.git, branch: main}\n", "dks-api.branch is not a key here"),
    ("a: &a [*a]\n", "refers to a node it is inside"),
])
def test_a_malformed_sources_file_is_an_input_error_naming_it(app, text, fact):
    (app.base_dir / images.SOURCES).write_text(text)
    with pytest.raises(InputError) as caught:
        images.source(app, "dks-api")
    assert fact in str(caught.value) and str(app.base_dir / images.SOURCES) in str(caught.value)


def test_a_non_utf8_sources_file_is_an_input_error(app):
    (app.base_dir / images.SOURCES).write_bytes(b"dks-api: {git: caf\xe9}\n")
    with pytest.raises(InputError, match="is not UTF-8 text: byte 0xe9"):
        images.source(app, "dks-api")


def test_git_clone_takes_the_url_after_a_double_dash(app, monkeypatch, tmp_path):
    (app.base_dir / images.SOURCES).write_text("dks-api: {git: https://example.com/a.git, ref: main}\n")
    monkeypatch.setattr(images, "CLONES", tmp_path / "clones")
    ran = []
    monkeypatch.setattr(images, "_run", lambda argv, what, **kw: ran.append(argv))
    images.source(app, "dks-api")
    clone = next(argv for argv in ran if "clone" in argv)
    assert clone[clone.index("--") + 1] == "https://example.com/a.git"
