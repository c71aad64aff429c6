"""docs/architecture.* is drawn from build/ as it is: regenerated source equal, every stack and service shown."""
from __future__ import annotations

import html
import re
import sys

import stacks
from helpers import BUILD, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import diagram  # noqa: E402

DOCS = ROOT / "docs"


def test_committed_diagram_source_is_what_build_draws():
    assert (DOCS / "architecture.dot").read_text() == diagram.dot_source(BUILD), "run make diagram"


def test_every_stack_and_service_in_build_appears_in_the_drawing():
    svg = (DOCS / "architecture.svg").read_text()
    texts = {html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    services = [r["Properties"]["ServiceName"] for p in BUILD.glob("*.yaml")
                for r in stacks.load(p.name)["Resources"].values() if r["Type"] == "AWS::ECS::Service"]
    assert len(services) == 3
    # The bridge UI has no Cloud Map name: it is drawn as running on the hosts' network.
    wanted = [p.name for p in BUILD.glob("*.yaml")] + services + ["dks-db.dks.local", "dks-api.dks.local"]
    assert [name for name in wanted if name not in texts] == []
    assert "HTTP :80" in texts and ":5432" in texts, "listeners and security group edges are drawn"


def test_the_drawing_follows_the_templates(tmp_path):
    """A path rule and a dependency between two new services show up as edges."""
    from helpers import app_from, dks_data, service

    from templates_src import render

    data = dks_data()
    extra = dict(service(data, "dks-ui"), name="dks-docs", repository=None, image="nginx:1.27", port=8081,
                 environment={"API": "{dks-api.host}"}, public={"port": 80, "path": "/docs/*"}, url_output=None,
                 depends_on=["dks-api"])
    data["services"].append(extra)
    data["cluster"]["max_size"] = 4
    render.write(render.render(app_from(data), "variant"), tmp_path)
    source = diagram.dot_source(tmp_path)
    assert 'l_Listener80 -> svc_dks_docs [label="/docs/*"];' in source
    # dks-docs copies the bridge UI: its connections leave from the hosts' group, as the UI's do
    assert 'svc_dks_docs -> svc_dks_api [label=":8080", style=dashed];' in source
    assert 'svc_dks_ui -> l_Listener8080 [label="KNOWLEDGE_SHARE_API (public URL)", style=dotted];' in source
