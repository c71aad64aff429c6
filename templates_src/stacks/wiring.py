"""Cross-stack wiring, declared once.

A value that crosses a stack boundary is a `Link` (one value) or a `ListLink` (one value per
member, e.g. per service, carried as one comma-joined list so a stack's parameter count does not
grow with the app). The producing stack `publish`es it as an Output; a consuming stack `use`s it,
which declares a Parameter of the same name; `connect` makes the root pass each child parameter
from its single source (a root parameter or a sibling's output) and fails the build when a
parameter has no source or two.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from troposphere import GetAtt, Join, Output, Parameter, Ref, Select, Template
from troposphere.cloudformation import Stack as NestedStack

from templates_src.app import quotas
from templates_src.app.config import App


class WiringError(Exception):
    """The stacks do not connect: a bug in the generator, never a user's config."""


@dataclass(frozen=True)
class Link:
    name: str
    description: str
    type: str = "String"


@dataclass(frozen=True)
class ListLink:
    """One value per member, in `members(app)` order, crossing as a CommaDelimitedList."""

    name: str
    description: str
    members: Callable[[App], tuple[str, ...]]
    type: str = "CommaDelimitedList"


AnyLink = Union[Link, ListLink]


class Stack:
    """A template plus what it needs from and gives to other stacks."""

    def __init__(self, name: str, app: App, description: str):
        self.name = name  # file stem: build/<name>.yaml
        self.app = app
        self.template = Template(Description=description)
        self.template.set_version("2010-09-09")
        self.inputs: dict[str, AnyLink] = {}
        self.outputs: dict[str, AnyLink] = {}
        self.after: list[Stack] = []  # siblings to be complete first (the root's DependsOn)

    @property
    def logical_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-")) + "Stack"

    def add(self, resource):
        if len(self.template.resources) == quotas.RESOURCES:  # troposphere would raise a bare ValueError
            raise quotas.QuotaError([f"{self.name}.yaml: more than {quotas.RESOURCES} resources, "
                                     f"CloudFormation allows {quotas.RESOURCES} per stack"])
        return self.template.add_resource(resource)

    def use(self, link: AnyLink, **props) -> Ref:
        """Ask for `link` as a Parameter (root parameters may pass Default and friends)."""
        if link.name not in self.inputs:
            description = link.description
            if isinstance(link, ListLink):
                description += f" (in this order: {', '.join(link.members(self.app))})"
            self.template.add_parameter(Parameter(link.name, **{"Type": link.type, "Description": description, **props}))
            self.inputs[link.name] = link
        return Ref(link.name)

    def add_rule(self, name: str, assertions: list[tuple[object, str]], when: object = None) -> None:
        """A Rule of the template: each (Assert, AssertDescription) must hold whenever `when` does
        (always without one). CloudFormation evaluates Rules before it creates or changes anything and
        refuses the operation with the first failing AssertDescription as its message, so write that as
        one sentence naming the parameter to change. Only rule functions (Fn::Equals, Fn::Not, Fn::And,
        Fn::Or, Fn::Contains, Fn::EachMemberEquals, Fn::EachMemberIn, Ref, ...) may appear:
        https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html
        """
        rule: dict[str, object] = {} if when is None else {"RuleCondition": when}
        rule["Assertions"] = [{"Assert": check, "AssertDescription": text} for check, text in assertions]
        self.template.add_rule(name, rule)

    def member(self, link: ListLink, key: str) -> Select:
        members = link.members(self.app)
        if key not in members:
            raise WiringError(f"{self.name}: '{key}' is not a member of {link.name} ({', '.join(members)})")
        return Select(members.index(key), self.use(link))

    def publish(self, link: Link, value) -> None:
        if link.name in self.outputs:
            raise WiringError(f"{self.name}: output {link.name} published twice")
        self.template.add_output(Output(link.name, Description=link.description, Value=value))
        self.outputs[link.name] = link

    def publish_members(self, link: ListLink, values: dict[str, object]) -> None:
        members = link.members(self.app)
        if set(values) != set(members):
            raise WiringError(f"{self.name}: {link.name} needs values for {members}, got {tuple(values)}")
        self.publish(link, Join(",", [values[key] for key in members]))  # type: ignore[arg-type]


def connect(root: Stack, children: list[Stack], template_url: Callable[[Stack], object]) -> None:
    """Add one nested stack per child to `root`, passing every child parameter from its source."""
    sources: dict[str, list[str]] = {name: ["root"] for name in root.inputs}
    for child in children:
        for name in child.outputs:
            sources.setdefault(name, []).append(child.logical_id)
    for child in children:
        parameters = {}
        for name in child.inputs:
            found = sources.get(name, [])
            if len(found) != 1:
                raise WiringError(f"parameter {name} of {child.name} has {len(found) or 'no'} sources"
                                  + (f": {', '.join(found)}" if found else ""))
            if found[0] == child.logical_id:
                raise WiringError(f"{child.name} consumes its own output {name}")
            parameters[name] = Ref(name) if found[0] == "root" else GetAtt(found[0], f"Outputs.{name}")
        order = {"DependsOn": [s.logical_id for s in child.after]} if child.after else {}
        root.add(NestedStack(child.logical_id, TemplateURL=template_url(child), Parameters=parameters, **order))


def output_of(children: list[Stack], link: AnyLink) -> GetAtt:
    """A child's output, for the root's own outputs."""
    producers = [c for c in children if link.name in c.outputs]
    if len(producers) != 1:
        raise WiringError(f"output {link.name} has {len(producers) or 'no'} producers")
    return GetAtt(producers[0].logical_id, f"Outputs.{link.name}")


def checkov_skip(*checks: tuple[str, str]) -> dict:
    """Resource metadata telling checkov a check does not apply here, with the reason beside it."""
    return {"checkov": {"skip": [{"id": check, "comment": reason} for check, reason in checks]}}
