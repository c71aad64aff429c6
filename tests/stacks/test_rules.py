"""Template Rules: the generator writes them in their place, the emulator evaluates them as CloudFormation
does (on its own, and at CreateStack, UpdateStack and CreateChangeSet), and the lifecycle's early check
agrees with it."""
from __future__ import annotations

import sys

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from troposphere import Equals, Not, Parameter, Ref
from troposphere.sns import Topic

from emulator import rules
from helpers import ROOT
from templates_src import render
from templates_src.app.config import DEFAULT_CONFIG
from templates_src.app.loading import load
from templates_src.stacks.wiring import Stack

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import rules as early  # noqa: E402

VALUES = {"Env": "test", "Type": "m1.small", "Tags": ["IT", "IT"], "Mixed": ["IT", "HR"], "Empty": ""}


def equals(left, right) -> dict:
    return {"Fn::Equals": [left, right]}


TRUE, FALSE = equals("a", "a"), equals("a", "b")

CASES = [  # (expression, value): every rule function, both ways
    (TRUE, True), (FALSE, False),
    (equals({"Ref": "Env"}, "test"), True), (equals({"Ref": "Env"}, "prod"), False),
    (equals(5, "5"), True),  # a template's number and a parameter's string are the same value
    ({"Fn::Not": [TRUE]}, False), ({"Fn::Not": [FALSE]}, True),
    ({"Fn::And": [TRUE, TRUE]}, True), ({"Fn::And": [TRUE, FALSE]}, False),
    ({"Fn::Or": [FALSE, TRUE]}, True), ({"Fn::Or": [FALSE, FALSE]}, False),
    ({"Fn::Contains": [["m1.large", "m1.small"], {"Ref": "Type"}]}, True),
    ({"Fn::Contains": [["m1.large"], {"Ref": "Type"}]}, False),
    ({"Fn::EachMemberEquals": [{"Ref": "Tags"}, "IT"]}, True),
    ({"Fn::EachMemberEquals": [{"Ref": "Mixed"}, "IT"]}, False),
    ({"Fn::EachMemberIn": [{"Ref": "Tags"}, ["IT", "HR"]]}, True),
    ({"Fn::EachMemberIn": [{"Ref": "Mixed"}, ["IT"]]}, False),
    ({"Fn::Not": [equals({"Ref": "Empty"}, "")]}, False),
]


@pytest.mark.parametrize("expression, value", CASES)
def test_each_rule_function_evaluates_as_documented(expression, value):
    assert rules.evaluate(expression, VALUES) is value
    assert early._value(expression, VALUES) is value


@pytest.mark.parametrize("expression, refusal", [
    ({"Fn::RefAll": "AWS::EC2::VPC::Id"}, "not emulated"),
    ({"Fn::ValueOf": ["Vpc", "Tags.Department"]}, "not emulated"),
    ({"Fn::ValueOfAll": ["AWS::EC2::Subnet::Id", "VpcId"]}, "not emulated"),
    ({"Fn::Sub": "${Env}"}, "Fn::Sub is not a rule function"),
    ({"Fn::And": [TRUE]}, "2 to 10 conditions"),
    ({"Fn::Or": [TRUE] * 11}, "2 to 10 conditions"),
    ({"Fn::Equals": ["a"]}, "takes a list of 2"),
    ({"Ref": "Nope"}, "refers to Nope, which is not a parameter"),
])
def test_what_the_emulator_cannot_evaluate_is_refused_loudly(expression, refusal):
    with pytest.raises(rules.RuleError, match=refusal):
        rules.evaluate(expression, VALUES)


def template(*named_rules: tuple[str, dict]) -> dict:
    return {"Parameters": {"Env": {"Type": "String", "Default": "test"}, "Size": {"Type": "Number", "Default": "2"},
                           "Zones": {"Type": "CommaDelimitedList", "Default": "a,b"}},
            "Rules": dict(named_rules), "Resources": {"T": {"Type": "AWS::SNS::Topic"}}}


def rule(condition: dict | None, *asserts: tuple[dict, str]) -> dict:
    found = {"Assertions": [{"Assert": check, "AssertDescription": text} for check, text in asserts]}
    return {**found, "RuleCondition": condition} if condition else found


def test_a_rule_applies_when_its_condition_holds_and_the_first_failing_assertion_speaks():
    prod_only = ("ProdSize", rule(equals({"Ref": "Env"}, "prod"), (equals({"Ref": "Size"}, "3"), "prod needs 3")))
    always = ("TwoZones", rule(None, (TRUE, "never"), (equals({"Ref": "Zones"}, ["a", "b"]), "Zones must be a,b")))
    values = rules.parameter_values(template(), {"Env": "test"}, resolve_ssm=str)
    assert values == {"Env": "test", "Size": "2", "Zones": ["a", "b"]}
    assert rules.failing(template(prod_only, always), values) is None  # the prod rule does not apply to test
    prod = rules.parameter_values(template(), {"Env": "prod"}, resolve_ssm=str)
    assert rules.failing(template(prod_only, always), prod) == "prod needs 3"
    assert rules.failing(template(always), {**values, "Zones": ["a"]}) == "Zones must be a,b"
    both = ("Both", rule(None, (FALSE, "the first"), (FALSE, "the second")))
    assert rules.failing(template(always, both), values) == "the first"
    with pytest.raises(rules.RuleError, match="must evaluate to true or false"):
        rules.failing(template(("Bare", rule(None, ({"Ref": "Env"}, "a string is no answer")))), values)
    with pytest.raises(rules.RuleError, match="needs a list of Assertions"):
        rules.failing(template(("Empty", {"Assertions": []})), values)


def test_the_lifecycle_leaves_what_it_cannot_decide_to_cloudformation():
    reads_the_account = ("Vpc", rule(None, ({"Fn::EachMemberIn": [{"Fn::ValueOfAll": ["AWS::EC2::Subnet::Id", "VpcId"]},
                                                                   {"Fn::RefAll": "AWS::EC2::VPC::Id"}]}, "subnets")))
    decided = ("Size", rule(None, (equals({"Ref": "Size"}, "3"), "Size must be 3")))
    assert early.refusal(template(reads_the_account), {}) is None
    assert early.refusal(template(reads_the_account, decided), {"Size": "2"}) == "Size must be 3"
    assert early.refusal(template(reads_the_account, decided), {"Size": "3"}) is None


# --- rendering -------------------------------------------------------------------------------------

def test_add_rule_renders_rules_after_parameters_in_the_documented_order():
    stack = Stack("main", load(DEFAULT_CONFIG), "a root")
    stack.template.add_parameter(Parameter("Env", Type="String", Default="test"))
    stack.add(Topic("Topic"))
    stack.add_rule("ProdOnly", [(Equals(Ref("Env"), "prod"), "Env must be prod")], when=Not(Equals("a", "b")))
    stack.add_rule("Plain", [(Equals(Ref("Env"), "test"), "Env must be test")])
    text = render.to_yaml(render._ordered(stack.template.to_dict()))
    sections = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections == ["AWSTemplateFormatVersion", "Description", "Parameters", "Rules", "Resources"]
    written = yaml.safe_load(text)["Rules"]
    assert list(written) == ["ProdOnly", "Plain"] and "RuleCondition" not in written["Plain"]
    assert list(written["ProdOnly"]) == ["RuleCondition", "Assertions"]
    assert written["ProdOnly"]["Assertions"] == [{"Assert": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
                                                  "AssertDescription": "Env must be prod"}]


def test_a_template_section_the_renderer_does_not_know_is_refused_not_dropped():
    with pytest.raises(ValueError, match="Hooks"):
        render._ordered({"Resources": {}, "Hooks": {}})


# --- the emulator, through the API ------------------------------------------------------------------

BODY = yaml.safe_dump(template(("ProdSize", rule(equals({"Ref": "Env"}, "prod"),
                                                 (equals({"Ref": "Size"}, "3"), "Size must be 3 in prod")))))


def params(**values: str) -> list[dict]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def refused(call) -> str:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return error.value.response["Error"]["Message"]


def live(cfn) -> list[str]:
    return [s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]


def test_create_stack_and_create_change_set_are_refused_before_anything_exists(aws: boto3.Session):
    cfn = aws.client("cloudformation")
    assert refused(lambda: cfn.create_stack(StackName="s", TemplateBody=BODY, Parameters=params(Env="prod"))) \
        == "Size must be 3 in prod"
    assert refused(lambda: cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="CREATE",
                                                 TemplateBody=BODY, Parameters=params(Env="prod"))) \
        == "Size must be 3 in prod"
    assert live(cfn) == [], "no stack, not even the REVIEW_IN_PROGRESS one of a CREATE change set"
    assert aws.client("sns").list_topics()["Topics"] == []
    cfn.create_stack(StackName="s", TemplateBody=BODY, Parameters=params(Env="prod", Size="3"))
    assert cfn.describe_stacks(StackName="s")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_update_stack_and_update_change_sets_are_refused_and_the_stack_is_unchanged(aws: boto3.Session):
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="s", TemplateBody=BODY, Parameters=params(Env="test"))
    assert refused(lambda: cfn.update_stack(StackName="s", TemplateBody=BODY, Parameters=params(Env="prod"))) \
        == "Size must be 3 in prod"
    # Size left out of an update takes its default (2), not a value of its own
    assert refused(lambda: cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="UPDATE",
                                                 TemplateBody=BODY, Parameters=params(Env="prod"))) \
        == "Size must be 3 in prod"
    stack = cfn.describe_stacks(StackName="s")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE" and {"ParameterKey": "Env", "ParameterValue": "test"} in \
        stack["Parameters"]
    assert cfn.list_change_sets(StackName="s")["Summaries"] == []
    # the previous value counts as given: Env stays test, so prod's rule does not apply
    cfn.create_change_set(StackName="s", ChangeSetName="c", ChangeSetType="UPDATE", TemplateBody=BODY,
                          Parameters=[{"ParameterKey": "Env", "UsePreviousValue": True},
                                      {"ParameterKey": "Size", "ParameterValue": "1"}])
    assert [c["ChangeSetName"] for c in cfn.list_change_sets(StackName="s")["Summaries"]] == ["c"]
