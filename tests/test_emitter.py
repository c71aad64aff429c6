"""emitter.py writes the very text PyYAML writes (render.pyyaml, the reference), or refuses."""
from __future__ import annotations

import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ROOT, app_from, dks_data, templates
from templates_src import emitter, render

from test_templates import VARIANTS

sys.path.insert(0, str(ROOT / "scripts"))
import synthetic  # noqa: E402

SCRIPT = "#!/bin/bash\nset -euo pipefail\n\nif [ \"$X\" = 'a: b' ]; then\n  echo \"# not a comment\"\nfi\n"
LONG = "A description that goes on and on, " * 6 + "with: a colon and 'quotes'."
AWKWARD = [
    "", " ", " leading", "trailing ", " both ", "a  b", "colon: space", "ends with colon:", "a:b", ":start",
    "http://example.com:8080/x", "# comment", "not # a comment", "not#comment", "'single'", '"double"',
    "it's", "- dash", "-dash", "? q", "?q", "---", "...", "--- x", "&anchor", "*alias", "!tag", "|", ">",
    "%", "@", "`", "{", "}", "[x]", ",", "=", "<<", "~", "null", "Null", "NULL", "true", "False", "yes", "No",
    "on", "OFF", "y", "n", "0", "-1", "+1", "007", "0x1F", "0o17", "0b101", "1_000", "1.5", "1e3", "-.inf",
    ".nan", "1:20", "2026-11-24", "2026-11-24 10:00:00", "12:30:45", "${AWS::Region}", "!Ref x", "ünïcödé",
    "snow ☃ man", "non\u00a0breaking", "€100", "日本語のテキスト", LONG, "x" * 300, LONG.replace(" ", "  "),
    "'" + LONG + "'", "a\nb", "a\nb\n", SCRIPT, "line\n\nwith a blank line\n", "  indented\nfirst line",
    "ends with\n\n", "\nstarts with a break", "trailing space \nin a block", "tab\there", "cr\rhere",
    "nel\x85here", "bom\ufeff", "emoji 😀", "bell\x07", "sep\u2028here",
]


def placements(value) -> list:
    """The value at every place a scalar can sit, at several depths (folding and blocks indent)."""
    return [{"Key": value}, {"A": {"B": {"C": value}}}, {"List": [value, value]}, [value],
            {"Deep": [{"Name": "x", "Value": value}, [value, {"K": [value]}]]}, {value: 1} if _keyable(value) else {}]


def _keyable(value) -> bool:
    """A key libyaml writes as a simple key: one line, 1 to 128 bytes."""
    return isinstance(value, str) and 0 < len(value.encode()) <= 128 and "\n" not in value


def test_every_template_of_the_default_app_variants_and_generated_apps_is_pyyaml_text():
    apps = [app_from(dks_data()), *(app_from(make()) for make in VARIANTS.values()),
            *(app_from(synthetic.app_data(n)) for n in (1, 10, 60))]
    for app in apps:
        for name, data in templates(app).items():
            assert emitter.to_yaml(data) == render.pyyaml(data), f"{app.name} {name}"  # never refused either


@pytest.mark.parametrize("value", AWKWARD, ids=repr)
def test_awkward_strings_are_written_as_pyyaml_writes_them(value):
    for data in placements(value):
        text = render.to_yaml(data)
        assert text == render.pyyaml(data)
        assert yaml.safe_load(text) == data


@pytest.mark.parametrize("value", [v for v in AWKWARD if not any(c in v for c in "\t\r\x85\ufeff😀\x07\u2028")
                                   and not v.startswith(("\n", "  indented")) and not v.endswith("\n\n")
                                   and " \n" not in v], ids=repr)
def test_the_writer_itself_handles_every_string_a_template_may_hold(value):
    """Quotes, colons, unicode, scripts, long text, look-alikes of numbers: no fallback to PyYAML."""
    for data in placements(value):
        assert emitter.to_yaml(data) == render.pyyaml(data)


@pytest.mark.parametrize("char", ["\x00", "\t", "\r", "\x7e", "\x7f", "\x85", "\x9f", "\xa0", "\u2027", "\u2028",
                                  "\u2029", "\u202a", "\ud7ff", "\ue000", "\ufefe", "\ufeff", "\uff00", "\ufffd",
                                  "\U00010000", "\U0010ffff"], ids=repr)
def test_characters_at_the_edges_of_what_libyaml_writes_as_is(char):
    for value in (char, f"a{char}b", f"a{char}b\nc\n"):
        data = {"Key": value, "List": [value]}
        try:
            assert emitter.to_yaml(data) == render.pyyaml(data)
        except emitter.Unsupported:
            assert render.to_yaml(data) == render.pyyaml(data)


@pytest.mark.parametrize("data", [
    {"Tab": "a\tb"}, {"Emoji": "😀"}, {"Block": "keep\n\n"}, {"Block": " indented\nblock"}, {1: "int key"},
    {"": "empty key"}, {"k" * 129: "long key"}, {"é" * 65: "long key"}, {"A": (shared := {"x": 1}), "B": shared},
    {"A": (empty := []), "B": empty},
], ids=repr)
def test_what_the_writer_refuses_pyyaml_writes(data):
    with pytest.raises(emitter.Unsupported):
        emitter.to_yaml(data)
    assert render.to_yaml(data) == render.pyyaml(data)


def test_scalars_of_every_type_are_written_as_pyyaml_writes_them():
    data = ["a", 1, -0, 10**30, 1.5, 1e17, -0.0, float("inf"), float("-inf"), float("nan"), None, True, False]
    assert emitter.to_yaml(data) == render.pyyaml(data)


def test_a_type_pyyaml_refuses_is_refused():
    with pytest.raises(emitter.Unsupported):
        emitter.to_yaml({"Tuple": (1, 2)})


SCALARS = st.one_of(
    st.text(st.sampled_from(list(" ::##--??''\"\n\nab0.1_=~<!&*|>%@`,[]{}é€\u00a0\t")), max_size=12),
    st.sampled_from(AWKWARD),
    st.builds(" ".join, st.lists(st.sampled_from(["word", "a:b", "it's", "x  y", "ünï", "#"]), max_size=50)),
    st.integers(-10**20, 10**20), st.booleans(), st.none(), st.floats(allow_nan=False),
)
KEYS = st.one_of(st.from_regex(r"\A[A-Za-z][A-Za-z0-9:/._-]{0,20}\Z"), st.sampled_from(AWKWARD))
DATA = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(KEYS, inner, max_size=4)), max_leaves=30)


def test_any_plain_data_is_written_as_pyyaml_writes_it(hypothesis_home):
    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(st.dictionaries(KEYS, DATA, max_size=6), st.lists(DATA, max_size=4)))
    def check(data):
        text = render.to_yaml(data)
        assert text == render.pyyaml(data)
        assert yaml.safe_load(text) == data

    check()
