"""The hosts over a deployment's life, on the emulator: sizes checked before anything is made, a new
launch template reaching running hosts through an instance refresh."""
from __future__ import annotations

import inventory
import stacks
from helpers import BUILD
from test_emulated_deploy import BUCKET, REGISTRY, ROOT, deploy
from test_lifecycle import run
from test_packets import OFFICE, blocked_hops, network


def test_min_size_above_max_size_is_refused_before_anything_is_made(aws):
    before = inventory.take(aws)
    refused = run("deploy", STACK="dks", SKIP_IMAGES="1", PARAMS="MinSize=5 MaxSize=3")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    # the template's own Rule, evaluated before the bucket, the registry or an image
    assert refused.stderr.strip() == "error: PARAMS: MinSize 5 needs MaxSize of at least 5: raise MaxSize or lower MinSize"
    assert refused.stdout == ""  # not even the templates bucket
    assert inventory.difference(before, inventory.take(aws)) == {}


def host_addresses(aws, group: str) -> list[tuple[str, str]]:
    """(private, public) IP of each host of the group that is not terminating."""
    (asg,) = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    ids = [i["InstanceId"] for i in asg["Instances"] if not i["LifecycleState"].startswith("Terminat")]
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"] if ids else []
    return sorted((i["PrivateIpAddress"], i["PublicIpAddress"]) for r in reservations for i in r["Instances"])


def live_rules(aws, group_id: str) -> list[dict]:
    """The ingress rules the hosts function wrote, in the shape tests/stacks/test_packets.py follows."""
    found = aws.client("ec2").describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return [{"_file": "network.yaml", "_group": "HostAddressesSecurityGroup", "IpProtocol": "tcp",
             "FromPort": r["FromPort"], "ToPort": r["ToPort"], "CidrIp": r["CidrIpv4"]}
            for r in found["SecurityGroupRules"] if not r["IsEgress"]]


def test_with_a_narrowed_cidr_the_hosts_addresses_follow_the_hosts_and_the_ui_reaches_the_api(aws, emulator):
    # Deployed as built, with AllowedIngressCidr narrowed to one office address: the hosts function runs as
    # the stack's custom resource, then on each launch and termination EventBridge delivers, and on its schedule.
    before = inventory.take(aws)
    deployment = deploy(aws, {"AllowedIngressCidr": OFFICE})
    group = deployment.one("cluster.yaml", "HostGroup").physical_id
    addresses = deployment.one("network.yaml", "HostAddressesSecurityGroup").physical_id
    tpls = {path.name: stacks.load(path.name) for path in BUILD.glob("*.yaml")}

    def reachable() -> list[str]:
        """What blocks the UI's server on its way to the API, with this moment's hosts and rules."""
        hosts = tuple(host_addresses(aws, group))
        net, places = network(tpls, OFFICE, with_host_addresses=False, hosts=hosts)
        net.runtime = live_rules(aws, addresses)
        return [hop for n in range(len(hosts)) for hop in blocked_hops(net, {**places, "dks-ui": places[f"host-{n}"]},
                                                                          "dks-ui", 8080, "dks-api")]

    first = host_addresses(aws, group)
    assert len(first) == 1 and reachable() == []
    assert {r["CidrIp"] for r in live_rules(aws, addresses)} == {f"{first[0][1]}/32"}

    scaling = aws.client("autoscaling")
    hosts = lambda: {i["InstanceId"] for i in scaling.describe_auto_scaling_groups(  # noqa: E731
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]}
    original = hosts()
    scaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=2)  # managed scaling adds a host
    both = host_addresses(aws, group)
    assert len(both) == 2 and reachable() == []
    assert {r["CidrIp"] for r in live_rules(aws, addresses)} == {f"{public}/32" for _, public in both}

    (leaving,) = hosts() - original
    scaling.terminate_instance_in_auto_scaling_group(InstanceId=leaving, ShouldDecrementDesiredCapacity=True)
    assert {r["CidrIp"] for r in live_rules(aws, addresses)} == {f"{first[0][1]}/32"}, "a host that left lost its rule"
    # the schedule repairs what a lost event would leave: a stale rule goes, a missing one comes back
    aws.client("ec2").authorize_security_group_ingress(GroupId=addresses, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "192.0.2.9/32"}]}])
    assert emulator.fire_schedule(deployment.one("cluster.yaml", "HostsSchedule").physical_id.rsplit("/", 1)[-1])
    assert {r["CidrIp"] for r in live_rules(aws, addresses)} == {f"{first[0][1]}/32"} and reachable() == []

    # and a plain stack delete finishes: the custom resource removes ECS's draining hook before the provider goes
    stacks.delete(aws, ROOT)
    stacks.delete(aws, REGISTRY)
    stacks.empty_bucket(aws, BUCKET)
    stacks.drop_retained(aws, before)
    assert inventory.difference(before, inventory.take(aws)) == {}



def test_a_new_launch_template_reaches_running_hosts_through_an_instance_refresh(aws):
    before = inventory.take(aws)
    assert run("deploy", STACK="dks", SKIP_IMAGES="1").returncode == 0
    cfn, ec2, scaling = aws.client("cloudformation"), aws.client("ec2"), aws.client("autoscaling")
    cluster = cfn.describe_stack_resource(StackName="dks", LogicalResourceId="ClusterStack")[
        "StackResourceDetail"]["PhysicalResourceId"]
    group = cfn.describe_stack_resource(StackName=cluster, LogicalResourceId="HostGroup")[
        "StackResourceDetail"]["PhysicalResourceId"]
    template = cfn.describe_stack_resource(StackName=cluster, LogicalResourceId="HostLaunchTemplate")[
        "StackResourceDetail"]["PhysicalResourceId"]
    (old,) = [i["InstanceId"] for i in scaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]]

    again = run("deploy", STACK="dks", SKIP_IMAGES="1")
    assert again.returncode == 0 and "instance refresh" not in again.stdout, "hosts on the group's version: nothing"

    # What CloudFormation does in place when the AMI parameter moves on: a new launch template version, the
    # group pointed at it; the running host keeps the version it was launched with.
    newer = ec2.create_launch_template_version(LaunchTemplateId=template, SourceVersion="1", LaunchTemplateData={
        "ImageId": ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][-1]["ImageId"]})
    version = str(newer["LaunchTemplateVersion"]["VersionNumber"])
    scaling.update_auto_scaling_group(AutoScalingGroupName=group,
                                      LaunchTemplate={"LaunchTemplateId": template, "Version": version})

    refreshed = run("deploy", STACK="dks", SKIP_IMAGES="1")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    (line,) = [line for line in refreshed.stdout.splitlines() if line.startswith("hosts:")]
    assert line.startswith("hosts: 1 of 1 run an older launch template (a new AMI or instance type); instance refresh ")
    (refresh,) = scaling.describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]
    assert refresh["Status"] == "Successful" and refresh["InstanceRefreshId"] in line
    assert refresh["Preferences"]["MinHealthyPercentage"] == 100 and refresh["Preferences"]["SkipMatching"] is True
    (host,) = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    assert host["InstanceId"] != old and host["LaunchTemplate"]["Version"] == version

    assert run("cleanup", STACK="dks", YES="1").returncode == 0
    assert inventory.difference(before, inventory.take(aws)) == {}
