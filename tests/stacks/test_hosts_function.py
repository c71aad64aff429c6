"""The hosts function's own code (templates_src/stacks/hosts_function.py), run against the emulator.

The template carries it inline; here it runs as a module with boto3 pointed at the emulator, the way
Lambda runs it with the function's role: it keeps one rule per host and port in the load balancer's
HostAddresses group, drops hosts that are gone, tolerates a racing run, and as the custom resource's
Delete removes ECS's draining hook, always answering CloudFormation at the ResponseURL.
"""
from __future__ import annotations

import http.server
import importlib.util
import json
import threading

import pytest

from helpers import ROOT

HOOK = "ecs-managed-draining-termination-hook"


def load_function():
    spec = importlib.util.spec_from_file_location("hosts_function",
                                                  ROOT / "templates_src" / "stacks" / "hosts_function.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hosts(aws):
    """A VPC with a public subnet, an empty HostAddresses group and a group of two hosts with public IPs."""
    ec2, scaling = aws.client("ec2"), aws.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    group = ec2.create_security_group(GroupName="addresses", Description="hosts", VpcId=vpc)["GroupId"]
    image = aws.client("ssm").get_parameter(Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/"
                                                 "image_id")["Parameter"]["Value"]
    template = ec2.create_launch_template(LaunchTemplateName="hosts", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.medium"})["LaunchTemplate"]["LaunchTemplateId"]
    scaling.create_auto_scaling_group(AutoScalingGroupName="hosts", MinSize=1, MaxSize=3, DesiredCapacity=2,
                                      LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
                                      VPCZoneIdentifier=subnet["SubnetId"])
    return {"group": "hosts", "sg": group, "ec2": ec2, "scaling": scaling, "function": load_function()}


def public_ips(hosts) -> set[str]:
    ids = [i["InstanceId"] for i in hosts["scaling"].describe_auto_scaling_groups(
        AutoScalingGroupNames=[hosts["group"]])["AutoScalingGroups"][0]["Instances"]]
    return {i["PublicIpAddress"] for r in hosts["ec2"].describe_instances(InstanceIds=ids)["Reservations"]
            for i in r["Instances"]}


def rules(hosts) -> set[tuple[str, int]]:
    found = hosts["ec2"].describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [hosts["sg"]]}])
    return {(r["CidrIpv4"], r["FromPort"]) for r in found["SecurityGroupRules"] if not r["IsEgress"]
            and r.get("CidrIpv4")}


def test_each_host_gets_a_rule_per_port_and_a_host_that_goes_loses_it(hosts, monkeypatch):
    function = hosts["function"]
    ips = public_ips(hosts)
    assert len(ips) == 2
    # An EventBridge event (a launch, a termination, the schedule) reconciles from the environment.
    monkeypatch.setenv("GROUP", hosts["group"])
    monkeypatch.setenv("SECURITY_GROUP", hosts["sg"])
    monkeypatch.setenv("PORTS", "8080,443")
    event = {"source": "aws.autoscaling", "detail-type": "EC2 Instance Launch Successful",
             "detail": {"AutoScalingGroupName": hosts["group"]}}
    assert function.handler(event, None) == "4 rules: 4 added, 0 removed"
    assert rules(hosts) == {(f"{ip}/32", port) for ip in ips for port in (8080, 443)}
    # nothing changed: nothing to do
    assert function.reconcile(hosts["group"], hosts["sg"], [8080, 443]) == "4 rules: 0 added, 0 removed"
    # a host leaves the group: its rules go, the other host's stay
    gone = hosts["scaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[hosts["group"]])[
        "AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    hosts["scaling"].terminate_instance_in_auto_scaling_group(InstanceId=gone, ShouldDecrementDesiredCapacity=True)
    left = public_ips(hosts)
    assert len(left) == 1
    assert function.reconcile(hosts["group"], hosts["sg"], [8080, 443]) == "2 rules: 0 added, 2 removed"
    assert rules(hosts) == {(f"{ip}/32", port) for ip in left for port in (8080, 443)}


class StaleReads:
    """An EC2 client whose read of the group's rules is the one it made before another run wrote."""

    def __init__(self, client, rules: list[dict]):
        self.client, self.rules = client, rules

    def __getattr__(self, name):
        return getattr(self.client, name)

    def get_paginator(self, name):
        if name != "describe_security_group_rules":
            return self.client.get_paginator(name)
        rules = self.rules

        class Pages:
            def paginate(self, **_):
                return [{"SecurityGroupRules": rules}]
        return Pages()


def test_a_racing_run_that_already_wrote_or_removed_a_rule_is_not_an_error(hosts, monkeypatch):
    function = hosts["function"]
    ips = sorted(public_ips(hosts))
    # Another run wrote both hosts' rules after our read (which saw none), and removed a rule our read
    # still saw: our writes meet Duplicate, our removal NotFound, and the group ends as it should.
    function.reconcile(hosts["group"], hosts["sg"], [8080])
    stale = [{"IsEgress": False, "CidrIpv4": "192.0.2.1/32", "FromPort": 8080, "SecurityGroupRuleId": "sgr-0123456789"}]
    real = function.boto3.client
    monkeypatch.setattr(function.boto3, "client",
                        lambda service, **kw: StaleReads(real(service, **kw), stale) if service == "ec2"
                        else real(service, **kw))
    assert function.reconcile(hosts["group"], hosts["sg"], [8080]) == "2 rules: 2 added, 1 removed"
    monkeypatch.setattr(function.boto3, "client", real)
    assert rules(hosts) == {(f"{ip}/32", 8080) for ip in ips}
    with pytest.raises(function.ClientError):  # any other refusal is not swallowed
        function.reconcile(hosts["group"], "sg-00000000000000000", [8080])


def test_no_group_or_no_port_keeps_nothing():
    # Before any AWS call: an app with no bridge service calling a URL configures neither.
    function = load_function()
    assert function.reconcile("hosts", "", [8080]) == "no addresses to keep"
    assert function.reconcile("hosts", "sg-1", []) == "no addresses to keep"


class Answers(http.server.BaseHTTPRequestHandler):
    """Plays CloudFormation's ResponseURL: keeps what the function PUTs."""

    received: list[dict] = []

    def do_PUT(self):  # noqa: N802 (the handler API's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Answers.received.append({"content_type": self.headers.get("Content-Type"), **json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def response_url():
    Answers.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/answer"
    server.shutdown()


def request(kind: str, url: str, hosts, ports=("8080",)) -> dict:
    return {"RequestType": kind, "ResponseURL": url, "StackId": "arn:aws:cloudformation:us-east-1:1:stack/s/1",
            "RequestId": "r1", "LogicalResourceId": "Hosts", "ResourceType": "Custom::Hosts",
            "ResourceProperties": {"ServiceToken": "arn", "AutoScalingGroupName": hosts["group"],
                                   "SecurityGroupId": hosts["sg"], "Ports": list(ports)}}


def test_create_reconciles_and_delete_removes_the_draining_hook(hosts, response_url):
    function = hosts["function"]
    function.handler(request("Create", response_url, hosts), None)
    (created,) = Answers.received
    assert created["Status"] == "SUCCESS" and created["PhysicalResourceId"] == "hosts-hosts"
    assert created["content_type"] == "" and created["RequestId"] == "r1"  # as a pre-signed S3 URL wants it
    assert "2 added" in created["Reason"] and len(rules(hosts)) == 2

    # ECS's hook on the group (managed draining adds it): the Delete removes it, completing what it holds
    hosts["scaling"].put_lifecycle_hook(AutoScalingGroupName=hosts["group"], LifecycleHookName=HOOK,
                                        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                                        HeartbeatTimeout=3600, DefaultResult="CONTINUE")
    function.handler(request("Delete", response_url, hosts), None)
    assert Answers.received[-1]["Status"] == "SUCCESS"
    assert Answers.received[-1]["Reason"] == "draining hook removed"
    assert hosts["scaling"].describe_lifecycle_hooks(AutoScalingGroupName=hosts["group"])["LifecycleHooks"] == []
    # a second Delete (a retried request) finds nothing to do and still answers
    function.handler(request("Delete", response_url, hosts), None)
    assert Answers.received[-1] == {**Answers.received[-1], "Status": "SUCCESS", "Reason": "no draining hook"}

    # a failed create is reported; a failed delete does not hold the stack
    broken = request("Create", response_url, hosts)
    broken["ResourceProperties"]["SecurityGroupId"] = "sg-00000000000000000"  # no such group
    function.handler(broken, None)
    assert Answers.received[-1]["Status"] == "FAILED" and Answers.received[-1]["Reason"].startswith("ClientError")
    gone = request("Delete", response_url, hosts)
    gone["ResourceProperties"]["AutoScalingGroupName"] = "no-such-group"
    function.handler(gone, None)
    assert Answers.received[-1]["Status"] == "SUCCESS"  # the hook only slows a delete; never block it


def test_the_template_carries_the_file_as_it_is_within_lambdas_inline_limit(dks_templates):
    (function,) = [r for r in dks_templates["cluster.yaml"]["Resources"].values()
                   if r["Type"] == "AWS::Lambda::Function"]
    code = function["Properties"]["Code"]["ZipFile"]
    assert code == (ROOT / "templates_src" / "stacks" / "hosts_function.py").read_text()
    assert len(code) <= 4096  # AWS::Lambda::Function Code.ZipFile
