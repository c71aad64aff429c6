"""The emulator extension on its own: small templates, each behaviour it adds to moto, via the AWS APIs."""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

import inventory
from emulator import install


def create(session, name: str, template: dict, parameters: dict | None = None) -> dict:
    cfn = session.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template),
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()])
    return cfn.describe_stacks(StackName=name)["Stacks"][0]


def delete(session, name: str) -> dict:
    cfn = session.client("cloudformation")
    stack_id = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName=name)
    return cfn.describe_stacks(StackName=stack_id)["Stacks"][0]


def physical(session, stack: str, logical: str) -> str:
    return session.client("cloudformation").describe_stack_resource(
        StackName=stack, LogicalResourceId=logical)["StackResourceDetail"]["PhysicalResourceId"]


VPC = {"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}}}


def test_install_names_what_it_changes_and_is_idempotent():
    assert install() == install()
    assert "Stack.get_cfn_attribute" in install() and len(install()) > 20


def test_cloud_map_namespace_and_service_exist_and_go_with_their_hosted_zone(aws):
    before = inventory.take(aws)
    create(aws, "sd", {"Resources": {**VPC,
        "Namespace": {"Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
                      "Properties": {"Name": "app.local", "Vpc": {"Ref": "Vpc"}}},
        "Service": {"Type": "AWS::ServiceDiscovery::Service",
                    "Properties": {"Name": "db", "NamespaceId": {"Ref": "Namespace"},
                                   "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 10}]}}}},
        "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Service", "Arn"]}}}})
    sd = aws.client("servicediscovery")
    (namespace,) = sd.list_namespaces()["Namespaces"]
    assert namespace["Name"] == "app.local" and namespace["Id"] == physical(aws, "sd", "Namespace")
    (service,) = sd.list_services()["Services"]
    assert service["Name"] == "db" and service["Arn"].endswith(physical(aws, "sd", "Service"))
    assert aws.client("route53").list_hosted_zones()["HostedZones"]
    assert delete(aws, "sd")["StackStatus"] == "DELETE_COMPLETE"
    assert inventory.difference(before, inventory.take(aws)) == {}


def test_a_registered_instance_makes_the_delete_fail_and_the_stack_stays_delete_failed(aws):
    create(aws, "sd", {"Resources": {**VPC,
        "Namespace": {"Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
                      "Properties": {"Name": "app.local", "Vpc": {"Ref": "Vpc"}}},
        "Service": {"Type": "AWS::ServiceDiscovery::Service",
                    "Properties": {"Name": "db", "NamespaceId": {"Ref": "Namespace"}}}}})
    sd = aws.client("servicediscovery")
    service = physical(aws, "sd", "Service")
    sd.register_instance(ServiceId=service, InstanceId="task-1", Attributes={"AWS_INSTANCE_IPV4": "10.9.0.5"})

    stack = delete(aws, "sd")
    assert stack["StackStatus"] == "DELETE_FAILED"
    listed = aws.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in listed] == ["DELETE_FAILED"], "kept, not dropped with its resources"
    assert sd.get_service(Id=service)["Service"]["Name"] == "db"

    sd.deregister_instance(ServiceId=service, InstanceId="task-1")
    assert delete(aws, "sd")["StackStatus"] == "DELETE_COMPLETE"
    assert sd.list_namespaces()["Namespaces"] == []


def test_generated_secrets_follow_their_spec_and_are_deleted_without_a_recovery_window(aws):
    create(aws, "secrets", {"Resources": {
        "Plain": {"Type": "AWS::SecretsManager::Secret",
                  "Properties": {"GenerateSecretString": {"PasswordLength": 20, "ExcludePunctuation": True}}},
        "Json": {"Type": "AWS::SecretsManager::Secret",
                 "Properties": {"Name": "app/db", "GenerateSecretString": {
                     "SecretStringTemplate": '{"username": "app"}', "GenerateStringKey": "password"}}}}})
    sm = aws.client("secretsmanager")
    plain = sm.get_secret_value(SecretId=physical(aws, "secrets", "Plain"))["SecretString"]
    assert len(plain) == 20 and plain.isalnum()
    document = json.loads(sm.get_secret_value(SecretId="app/db")["SecretString"])
    assert document["username"] == "app" and len(document["password"]) == 32
    delete(aws, "secrets")
    assert sm.list_secrets(IncludePlannedDeletion=True)["SecretList"] == []


def test_security_group_rules_are_the_template_s_own(aws):
    create(aws, "sg", {"Resources": {**VPC,
        "A": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupDescription": "a", "VpcId": {"Ref": "Vpc"},
            "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"}],
            "SecurityGroupEgress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}]}},
        "B": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "b", "VpcId": {"Ref": "Vpc"}}},
        "AToB": {"Type": "AWS::EC2::SecurityGroupEgress", "Properties": {
            "GroupId": {"Ref": "A"}, "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
            "DestinationSecurityGroupId": {"Ref": "B"}}}}})
    ec2 = aws.client("ec2")
    a, b = physical(aws, "sg", "A"), physical(aws, "sg", "B")
    (group,) = ec2.describe_security_groups(GroupIds=[a])["SecurityGroups"]
    assert {inventory.rule_key(r) for r in group["IpPermissionsEgress"]} == {
        "tcp:443-443:0.0.0.0/0", f"tcp:5432-5432:{b}"}, "listed egress replaces allow-all"
    assert {inventory.rule_key(r) for r in group["IpPermissions"]} == {"tcp:80-80:0.0.0.0/0"}
    (other,) = ec2.describe_security_groups(GroupIds=[b])["SecurityGroups"]
    assert {inventory.rule_key(r) for r in other["IpPermissionsEgress"]} == {"-1:None-None:0.0.0.0/0"}


def test_nested_outputs_parent_and_root_ids_two_levels_deep(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="nested-templates")
    leaf = {"Resources": {"Log": {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": 7}}},
            "Outputs": {"Name": {"Value": {"Ref": "Log"}}}}
    middle = {"Resources": {"Leaf": {"Type": "AWS::CloudFormation::Stack", "Properties": {
                  "TemplateURL": "https://nested-templates.s3.us-east-1.amazonaws.com/leaf.json"}}},
              "Outputs": {"Name": {"Value": {"Fn::GetAtt": ["Leaf", "Outputs.Name"]}}}}
    s3.put_object(Bucket="nested-templates", Key="leaf.json", Body=json.dumps(leaf))
    s3.put_object(Bucket="nested-templates", Key="middle.json", Body=json.dumps(middle))
    root = create(aws, "root", {"Resources": {"Middle": {"Type": "AWS::CloudFormation::Stack", "Properties": {
        "TemplateURL": "https://nested-templates.s3.us-east-1.amazonaws.com/middle.json"}}},
        "Outputs": {"Name": {"Value": {"Fn::GetAtt": ["Middle", "Outputs.Name"]}}}})

    cfn = aws.client("cloudformation")
    by_name = {s["StackName"]: s for s in cfn.describe_stacks()["Stacks"]}
    middle_stack = next(s for n, s in by_name.items() if "-Middle-" in n)
    leaf_stack = next(s for n, s in by_name.items() if "-Leaf-" in n)
    assert middle_stack["ParentId"] == root["StackId"] and middle_stack["RootId"] == root["StackId"]
    assert leaf_stack["ParentId"] == middle_stack["StackId"] and leaf_stack["RootId"] == root["StackId"]
    (log_group,) = aws.client("logs").describe_log_groups()["logGroups"]
    assert root["Outputs"] == [{"OutputKey": "Name", "OutputValue": log_group["logGroupName"]}]
    assert log_group["retentionInDays"] == 7


def test_a_failed_create_rolls_back_and_says_which_resource_and_why(aws):
    stack = create(aws, "broken", {"Resources": {**VPC,
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.99.0.0/24"}}}})
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    events = aws.client("cloudformation").describe_stack_events(StackName="broken")["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed["LogicalResourceId"] == "Subnet" and "10.99.0.0/24" in failed["ResourceStatusReason"]
    assert [e["LogicalResourceId"] for e in events if e["ResourceStatus"] == "DELETE_COMPLETE"] == ["Vpc"]
    assert "Outputs" not in stack
    assert aws.client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.9.0.0/16"]}])["Vpcs"] == []


def test_a_deleted_stack_s_resources_are_never_recreated_by_listing_them(aws):
    stack = create(aws, "vpc", {"Resources": VPC})
    before_delete = inventory.take(aws)
    delete(aws, "vpc")
    cfn = aws.client("cloudformation")
    assert cfn.list_stack_resources(StackName=stack["StackId"])["StackResourceSummaries"] == []
    after = inventory.take(aws)
    assert inventory.difference(before_delete, after)["ec2 vpcs"]["gone"] == [physical_of(before_delete, after)]


def physical_of(before: dict, after: dict) -> str:
    (vpc,) = set(before["ec2 vpcs"]) - set(after["ec2 vpcs"])
    return vpc


@pytest.mark.parametrize("value, message", [
    ("Bad_Name", "failed to satisfy constraint: lowercase"),
    ("abcdefghijklmn", "at most 12 characters"),
])
def test_parameters_outside_their_constraints_are_refused(aws, value, message):
    template = {"Parameters": {"Name": {"Type": "String", "MaxLength": 12, "AllowedPattern": "^[a-z]+$",
                                        "ConstraintDescription": "lowercase letters"}},
                "Resources": {"Log": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Ref": "Name"}}}}}
    with pytest.raises(ClientError) as refused:
        create(aws, "params", template, {"Name": value})
    assert message in refused.value.response["Error"]["Message"]
    assert aws.client("logs").describe_log_groups()["logGroups"] == []


def test_ecs_lists_leave_out_deleted_clusters_and_capacity_providers_list_without_names(aws):
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="gone")
    ecs.delete_cluster(cluster="gone")
    assert ecs.list_clusters()["clusterArns"] == []
    assert ecs.describe_clusters(clusters=["gone"])["clusters"][0]["status"] == "INACTIVE"
    assert ecs.describe_capacity_providers()["capacityProviders"] == []


def test_on_failure_do_nothing_keeps_the_failed_stack_and_what_it_made(aws):
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="kept", OnFailure="DO_NOTHING", TemplateBody=json.dumps({"Resources": {**VPC,
        "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.99.0.0/24"}}}}))
    stack = cfn.describe_stacks(StackName="kept")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert aws.client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.9.0.0/16"]}])["Vpcs"]
    assert delete(aws, "kept")["StackStatus"] == "DELETE_COMPLETE"


def test_a_template_url_without_an_object_is_refused_with_the_url(aws):
    aws.client("s3").create_bucket(Bucket="nested-templates")
    url = "https://nested-templates.s3.us-east-1.amazonaws.com/missing.yaml"
    with pytest.raises(ClientError) as refused:
        aws.client("cloudformation").create_stack(StackName="missing", TemplateURL=url)
    assert "TemplateURL must reference a valid S3 object" in refused.value.response["Error"]["Message"]


def test_events_carry_resolved_properties(aws):
    create(aws, "props", {"Resources": {"Log": {"Type": "AWS::Logs::LogGroup", "Properties": {
        "LogGroupName": {"Fn::Sub": "/app/${AWS::StackName}"}, "RetentionInDays": 3}}}})
    events = aws.client("cloudformation").describe_stack_events(StackName="props")["StackEvents"]
    (done,) = [e for e in events if e["LogicalResourceId"] == "Log" and e["ResourceStatus"] == "CREATE_COMPLETE"]
    assert json.loads(done["ResourceProperties"]) == {"LogGroupName": "/app/props", "RetentionInDays": 3}


def test_a_bucket_policy_statement_whose_condition_does_not_hold_does_not_deny(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="guarded")
    s3.put_bucket_policy(Bucket="guarded", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::guarded/*",
        "Condition": {"StringEquals": {"s3:signatureversion": "AWS"}}}]}))
    s3.put_object(Bucket="guarded", Key="k", Body=b"v")  # signature v4: the Deny does not apply
    assert s3.get_object(Bucket="guarded", Key="k")["Body"].read() == b"v"


def test_every_test_runs_against_loopback_with_dummy_credentials():
    import os

    import boto3

    client = boto3.client("sts")
    assert client.meta.endpoint_url.startswith("http://127.0.0.1:"), "never a real AWS endpoint"
    assert boto3.Session().get_credentials().access_key == "testing"
    assert "AWS_PROFILE" not in os.environ


def test_tagged_resources_are_the_account_s_own_not_aws_s_public_parameters(aws):
    """GetResources lists the account's resources: a parameter it put, with its tags, and none of the thousands
    of AWS's public parameters (/aws/service/...) the emulator holds once a template has read one."""
    ssm = aws.client("ssm")
    image = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
    assert ssm.get_parameter(Name=image)["Parameter"]["Value"].startswith("ami-")
    ssm.put_parameter(Name="/app/mode", Value="production", Type="String", Tags=[{"Key": "team", "Value": "web"}])
    ssm.put_parameter(Name="/app/untagged", Value="x", Type="String")

    listed = {item["ResourceARN"]: {t["Key"]: t["Value"] for t in item["Tags"]}
              for page in aws.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
                  ResourceTypeFilters=["ssm:parameter"]) for item in page["ResourceTagMappingList"]}
    assert [arn for arn in listed if ":parameter/aws/" in arn] == []
    assert listed["arn:aws:ssm:us-east-1:123456789012:parameter/app/mode"] == {"team": "web"}
    assert ssm.get_parameter(Name=image)["Parameter"]["Value"].startswith("ami-"), "still there to read"
