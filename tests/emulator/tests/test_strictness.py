"""The emulator refuses what AWS refuses: every mutation of tests/mutations.py deployed, the share refused measured.

The unmutated set is deployed once (registry and root). Each mutation then changes one template of build/ and
deploys that template alone, as a stack of its own, with the parameters the deployment gave its nested stack
(another EnvironmentName, so names do not collide; ECS service names given a suffix; the discovery stack in a
VPC of its own, where a second `dks.local` may exist): what a nested stack would refuse, it refuses the same
way, in a fraction of the time of a whole root. The unmutated copy of each template deployed the same way must
succeed, so a refusal is the mutation's doing. A mutation counts as refused when the stack is refused at
CreateStack or fails, and the reason carries the mutation's words.
"""
from __future__ import annotations

import ast
import copy
import functools
import json
import re

import pytest
import yaml
from botocore.exceptions import ClientError

import stacks
from helpers import ROOT as ROOT_DIR
from mutations import MUTATIONS, Context, Mutation
from test_emulated_deploy import BUCKET, REGISTRY, deploy

GOAL = 0.9
FIGURE = re.compile(r"emulator strictness: (\d+)/(\d+) mutations refused")


class Harness:
    """Deploys one template of build/, changed or not, beside the deployment."""

    def __init__(self, session, deployment):
        self.session, self.cfn, self.count = session, session.client("cloudformation"), 0
        ec2 = session.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="elsewhere", Description="another VPC", VpcId=vpc)["GroupId"]
        self.context = Context(foreign_group=group, foreign_subnet=subnet)
        self.other_vpc = vpc
        self.parameters = {file: self._given(stack) for file, stack in deployment.stacks.items()}

    @staticmethod
    def _given(stack: dict) -> dict[str, str]:
        given = {}
        for key, value in stacks.parameters(stack).items():
            # DescribeStacks on the emulator shows a list parameter in its Python form; CloudFormation takes "a,b".
            if value.startswith("['"):
                value = ",".join(ast.literal_eval(value))
            given[key] = value
        return given

    def deploy(self, file: str, template: dict) -> tuple[bool, str]:
        """(created, reason): whether the stack came up, else why not (the refusal or the failed events)."""
        self.count += 1
        name, key = f"strict-{self.count}", f"strict/{self.count}/{file}"
        self.session.client("s3").put_object(Bucket=BUCKET, Key=key, Body=yaml.safe_dump(template).encode())
        parameters = dict(self.parameters[file])
        if "EnvironmentName" in parameters:
            parameters["EnvironmentName"] = f"m{self.count}"
        if file == "discovery.yaml":
            parameters["VpcId"] = self.other_vpc
        try:
            stack = stacks.create(self.session, name, stacks.template_url(self.session, BUCKET, key), parameters)
        except ClientError as refused:
            return False, refused.response["Error"]["Message"]
        created = stack["StackStatus"] == "CREATE_COMPLETE"
        reasons = [e.get("ResourceStatusReason") or "" for e in
                   self.cfn.describe_stack_events(StackName=stack["StackId"])["StackEvents"]
                   if e["ResourceStatus"].endswith("FAILED")]
        if created:  # a created copy goes; one that failed has rolled back already
            stacks.delete(self.session, stack["StackId"])
        return created, " | ".join(reasons)


@functools.cache
def built(file: str) -> dict:
    return stacks.load(file)


def beside(file: str) -> dict:
    """A copy of a built template that can stand beside the deployment: the ECS service names the template fixes
    get a suffix (a name is unique in its cluster); every other name follows EnvironmentName."""
    template = copy.deepcopy(built(file))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ECS::Service" and isinstance(resource["Properties"].get("ServiceName"), str):
            resource["Properties"]["ServiceName"] += "-beside"
    return template


def run(mutation: Mutation, harness: Harness) -> tuple[bool, str]:
    template = beside(mutation.template)
    mutation.change(template, harness.context)
    created, reason = harness.deploy(mutation.template, template)
    return (not created and mutation.refusal in reason), reason


def test_the_mutations_are_many_single_and_sourced():
    assert len(MUTATIONS) >= 40
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS), "each mutation has its own name"
    assert all(m.source and m.refusal for m in MUTATIONS)
    assert {m.template for m in MUTATIONS} >= {"iam.yaml", "network.yaml", "cluster.yaml", "loadbalancer.yaml",
                                               "services.yaml", "discovery.yaml", "secrets.yaml", "storage.yaml",
                                               "registry.yaml"}
    for mutation in MUTATIONS:  # each changes its template
        template = beside(mutation.template)
        mutation.change(template, Context("sg-0", "subnet-0"))
        assert template != beside(mutation.template), mutation.id


def test_the_emulator_refuses_what_aws_refuses(aws, draining_hook_unmodelled, capsys):
    deployment = deploy(aws)
    harness = Harness(aws, deployment)
    for file in sorted({m.template for m in MUTATIONS}):
        created, reason = harness.deploy(file, beside(file))
        assert created, f"{file} unchanged must deploy alone: {reason}"

    accepted = {}
    for mutation in MUTATIONS:
        refused, reason = run(mutation, harness)
        if not refused:
            accepted[mutation.id] = reason or "created"
    refused_count = len(MUTATIONS) - len(accepted)
    line = f"emulator strictness: {refused_count}/{len(MUTATIONS)} mutations refused"
    with capsys.disabled():
        print(f"\n{line}")
        for name, reason in accepted.items():
            print(f"  accepted: {name} ({reason[:160]})")
    assert refused_count / len(MUTATIONS) >= GOAL, accepted
    quoted = FIGURE.search((ROOT_DIR / "README.md").read_text())
    assert quoted and quoted.group(0) == line, f"the README quotes {line!r}"


def test_the_schema_reads_values_as_cloudformation_passes_them():
    """Parameters reach properties as strings, and AWS::NoValue removes what it stands for: neither is a refusal."""
    from emulator import strict

    target_group = "AWS::ElasticLoadBalancingV2::TargetGroup"
    strict.check_schema("Tg", target_group, strict.without_novalue(
        {"Port": "8080", "HealthCheckEnabled": "true", "Protocol": "HTTP", "Tags": [None]}))
    with pytest.raises(strict.Refused) as refused:
        strict.check_schema("Tg", target_group, {"Port": "eighty"})
    assert "#/Port: expected type: Integer" in refused.value.message
    with pytest.raises(strict.Refused) as refused:
        strict.check_schema("Tg", target_group, {"HealthCheckIntervalSeconds": "301"})
    assert "#/HealthCheckIntervalSeconds: failed validation constraint for keyword [maximum] (300)" in \
        refused.value.message
    assert strict.attributes("AWS::CloudFormation::Stack") is None, "a nested stack's outputs are any name"
    assert "DNSName" in strict.attributes("AWS::ElasticLoadBalancingV2::LoadBalancer")


def test_an_updated_service_is_not_taken_for_a_second_one(aws):
    """The unique-name check is CreateService's: an update of the service that holds the name passes."""
    ecs = {
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "strict"}},
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Family": "strict", "ContainerDefinitions": [
            {"Name": "app", "Image": "nginx", "Memory": 128, "Essential": True}]}},
        "Service": {"Type": "AWS::ECS::Service", "Properties": {
            "ServiceName": "app", "Cluster": {"Ref": "Cluster"}, "TaskDefinition": {"Ref": "Task"},
            "DesiredCount": {"Ref": "Count"}}},
    }
    template = {"Parameters": {"Count": {"Type": "Number"}}, "Resources": ecs}
    cfn = aws.client("cloudformation")
    steps = (("create_stack", "1", "CREATE_COMPLETE"), ("update_stack", "2", "UPDATE_COMPLETE"))
    for operation, count, status in steps:
        getattr(cfn, operation)(StackName="strict", TemplateBody=json.dumps(template),
                                Parameters=[{"ParameterKey": "Count", "ParameterValue": count}])
        stack = cfn.describe_stacks(StackName="strict")["Stacks"][0]
        assert stack["StackStatus"] == status, cfn.describe_stack_events(StackName="strict")["StackEvents"][:3]
    cfn.delete_stack(StackName="strict")
