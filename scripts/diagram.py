"""make diagram: the architecture drawn from build/ itself, to docs/architecture.{dot,svg,png}.

Each stack is a box; inside are what matters at a glance: the services with their discovery
names, the load balancer's listeners with their paths and target groups, the network, the hosts.
Edges are read from the templates: internet -> listener (the load balancer's ingress rules),
listener -> service (default actions and path rules), client -> service (security group ingress
between services, with the port; a bridge service's connections come from the hosts' group), and a
bridge service -> the listener whose public URL its environment names. Resources are tied to
services by the generator's logical ID convention (`DksApi` + `Service` / `TargetGroup` /
`SecurityGroup` / `Discovery` / `TaskDefinition`).

Usage: python scripts/diagram.py [--build build] [--out docs]   (needs Graphviz's `dot`)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _ref(value) -> str | None:
    return value.get("Ref") if isinstance(value, dict) else None


def _branches(value) -> list:
    """Both outcomes of an Fn::If (a value that depends on a condition), else the value itself."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [branch for branch in value["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"}]
    return [value]


def _protocol(props: dict) -> str:
    return "/".join(dict.fromkeys(_branches(props.get("Protocol", "HTTP"))))


def _load(build: Path) -> dict[str, dict]:
    return {path.stem: yaml.safe_load(path.read_text()) for path in sorted(build.glob("*.yaml"))}


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r.get("Properties", {}) for k, r in template.get("Resources", {}).items() if r["Type"] == kind}


def _quote(text: str) -> str:
    """A DOT string; `\\n` in the text is DOT's line break and stays one."""
    return '"' + text.replace('"', '\\"') + '"'


def dot_source(build: Path) -> str:
    stacks = _load(build)
    services = {}  # logical prefix -> service name
    for name, template in stacks.items():
        for logical, props in _of_type(template, "AWS::ECS::Service").items():
            services[logical.removesuffix("Service")] = props["ServiceName"]
    node = {prefix: f"svc_{name.replace('-', '_')}" for prefix, name in services.items()}
    bridge = [logical.removesuffix("TaskDefinition") for template in stacks.values()
              for logical, props in _of_type(template, "AWS::ECS::TaskDefinition").items()
              if props.get("NetworkMode") == "bridge" and logical.removesuffix("TaskDefinition") in node]

    lines = ["digraph architecture {", '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, compound=true];',
             '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];',
             '  internet [label="internet\\n(AllowedIngressCidr)", shape=ellipse, fillcolor="#f2f2f2"];']
    namespace = ""
    discovered = {}
    if "discovery" in stacks:
        for props in _of_type(stacks["discovery"], "AWS::ServiceDiscovery::PrivateDnsNamespace").values():
            namespace = props["Name"]
        for logical, props in _of_type(stacks["discovery"], "AWS::ServiceDiscovery::Service").items():
            discovered[logical.removesuffix("Discovery")] = f"{props['Name']}.{namespace}"

    for name, template in stacks.items():
        lines.append(f"  subgraph cluster_{name.replace('-', '_')} {{")
        lines.append(f"    label={_quote(name + '.yaml')}; style=rounded; color=\"#7f7f7f\";")
        drawn = False
        for logical, props in _of_type(template, "AWS::ECS::Service").items():
            prefix = logical.removesuffix("Service")
            label = props["ServiceName"] + (f"\\n{discovered[prefix]}" if prefix in discovered else "") + \
                ("\\n(bridge: on the hosts' network)" if prefix in bridge else "")
            lines.append(f"    {node[prefix]} [label={_quote(label)}, fillcolor=\"#e8f1fb\"];")
            drawn = True
        for logical, props in _of_type(template, "AWS::ElasticLoadBalancingV2::Listener").items():
            condition = " (with a certificate)" if template["Resources"][logical].get("Condition") else ""
            label = _quote(f"{_protocol(props)} :{props['Port']}{condition}")
            lines.append(f"    l_{logical} [label={label}, shape=cds, fillcolor=\"#fff4e0\"];")
            drawn = True
        # The user's name: a certificate made for it, and the record that points it at the load balancer.
        for logical in _of_type(template, "AWS::CertificateManager::Certificate"):
            label = _quote("ACM certificate for DomainName\\n(DNS-validated in HostedZoneId)")
            lines.append(f"    c_{logical} [label={label}, shape=note, fillcolor=\"#eef7ee\"];")
        for logical in _of_type(template, "AWS::Route53::RecordSet"):
            label = _quote("DomainName: alias A record\\nin HostedZoneId")
            lines.append(f"    r_{logical} [label={label}, shape=note, fillcolor=\"#eef7ee\"];")
        if name == "network":
            vpc = next(iter(_of_type(template, "AWS::EC2::VPC").values()), {})
            subnets = len(_of_type(template, "AWS::EC2::Subnet"))
            nats = len(_of_type(template, "AWS::EC2::NatGateway"))
            label = f"VPC {vpc.get('CidrBlock', '')}\\n{subnets} public subnets, internet gateway\\n{nats} NAT gateways"
            lines.append(f"    network [label={_quote(label)}];")
            drawn = True
        if name == "discovery" and namespace:
            lines.append(f"    namespace [label={_quote(f'Cloud Map namespace {namespace}')}];")
            drawn = True
        if not drawn:
            kinds = sorted({r["Type"].split("::", 1)[1] for r in template.get("Resources", {}).values()})
            if name == "main":
                kinds = ["root: the deploy-time parameters", "outputs: " + ", ".join(template.get("Outputs", {}))]
            label = _quote("\\n".join(kinds))
            lines.append(f"    stack_{name.replace('-', '_')} [label={label}];")
        lines.append("  }")

    # Stack to stack: the outputs each nested stack takes from a sibling, as the root wires them.
    anchors = {}  # stack -> a node inside its box (edges between boxes attach to it)
    for line in lines:
        if line.startswith("  subgraph cluster_"):
            current = line.split("cluster_", 1)[1].split(" ", 1)[0]
        elif line.startswith("    ") and "[" in line and current not in anchors and not line.startswith("    label"):
            anchors[current] = line.split()[0]
    files = {}
    for logical, props in _of_type(stacks.get("main", {}), "AWS::CloudFormation::Stack").items():
        url = props["TemplateURL"]
        text = url["Fn::Sub"] if isinstance(url, dict) else url
        files[logical] = text.rsplit("}", 1)[-1].rsplit("/", 1)[-1].removesuffix(".yaml")
    for logical, props in _of_type(stacks.get("main", {}), "AWS::CloudFormation::Stack").items():
        taken: dict[str, list[str]] = {}
        for value in props.get("Parameters", {}).values():
            source = value.get("Fn::GetAtt") if isinstance(value, dict) else None
            if source and source[0] in files:
                taken.setdefault(files[source[0]], []).append(source[1].removeprefix("Outputs."))
        for producer, outputs in sorted(taken.items()):
            a, b = producer.replace("-", "_"), files[logical].replace("-", "_")
            shown = ", ".join(outputs[:2]) + (f" +{len(outputs) - 2}" if len(outputs) > 2 else "")
            lines.append(f"  {anchors[a]} -> {anchors[b]} [ltail=cluster_{a}, lhead=cluster_{b}, "
                         f"label={_quote(shown)}, style=dotted, color=\"#7f7f7f\", fontcolor=\"#7f7f7f\"];")

    lb = stacks.get("loadbalancer", {})
    groups = {logical: logical.removesuffix("TargetGroup")
              for logical in _of_type(lb, "AWS::ElasticLoadBalancingV2::TargetGroup")}
    for logical, props in _of_type(lb, "AWS::ElasticLoadBalancingV2::Listener").items():
        lines.append(f"  internet -> l_{logical};")
        for action in [a for each in props.get("DefaultActions", []) for a in _branches(each)]:
            group = _ref(action.get("TargetGroupArn"))
            if group in groups and groups[group] in node:
                lines.append(f"  l_{logical} -> {node[groups[group]]} [label=\"default\"];")
            elif action.get("Type") == "redirect":
                lines.append(f"  l_{logical} -> l_Listener{action['RedirectConfig']['Port']} "
                             "[label=\"redirect (with a certificate)\", style=dashed];")
    for props in _of_type(lb, "AWS::ElasticLoadBalancingV2::ListenerRule").values():
        paths = [v for c in props.get("Conditions", []) for v in c.get("PathPatternConfig", {}).get("Values", [])]
        for listener in map(_ref, _branches(props.get("ListenerArn"))):
            for action in props.get("Actions", []):
                group = _ref(action.get("TargetGroupArn"))
                if listener and group in groups and groups[group] in node:
                    lines.append(f"  l_{listener} -> {node[groups[group]]} [label={_quote(', '.join(paths))}];")

    net = stacks.get("network", {})
    groups = {logical: logical.removesuffix("SecurityGroup") for logical in _of_type(net, "AWS::EC2::SecurityGroup")}
    for props in _of_type(net, "AWS::EC2::SecurityGroupIngress").values():
        source, target = _ref(props.get("SourceSecurityGroupId")), groups.get(_ref(props.get("GroupId")))
        # A bridge container's connections come from its host: the hosts' group stands for each of them.
        clients = bridge if source == "HostSecurityGroup" else [groups.get(source)]
        for client in clients:
            if client in node and target in node:
                lines.append(f"  {node[client]} -> {node[target]} [label=\":{props['FromPort']}\", style=dashed];")
    listeners = {props["Port"]: logical
                 for logical, props in _of_type(lb, "AWS::ElasticLoadBalancingV2::Listener").items()}
    for logical, props in sorted(_of_type(stacks.get("services", {}), "AWS::ECS::TaskDefinition").items()):
        prefix = logical.removesuffix("TaskDefinition")
        for variable in props["ContainerDefinitions"][0].get("Environment", []):
            value = variable["Value"].get("Fn::Sub") if isinstance(variable["Value"], dict) else None
            text = value if isinstance(value, str) else (value or [""])[0]
            if prefix in bridge and "${PublicHost}" in text:
                tail = text.split("${PublicHost}", 1)[1]
                port = int(tail[1:].split("/")[0]) if tail.startswith(":") else 80
                if port in listeners:
                    label = _quote(variable["Name"] + " (public URL)")
                    lines.append(f"  {node[prefix]} -> l_{listeners[port]} [label={label}, style=dotted];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    if shutil.which("dot") is None:
        print("error: Graphviz's `dot` is not installed (Debian: apt-get install graphviz)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    source = args.out / "architecture.dot"
    source.write_text(dot_source(args.build))
    for fmt in ("svg", "png"):
        subprocess.run(["dot", f"-T{fmt}", str(source), "-o", str(args.out / f"architecture.{fmt}")], check=True)
    print(f"wrote {source} and architecture.svg, architecture.png beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
