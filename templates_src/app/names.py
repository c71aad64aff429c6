"""Physical names of AWS resources, and the AWS length limits they must respect.

Every explicit name is `${EnvironmentName}`-prefixed (EnvironmentName is a deploy-time parameter
capped at ENVIRONMENT_MAX characters), so the build can check the longest name a deployment can
produce. IAM names are global, so they also carry the region.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from troposphere import Sub

from templates_src.app.config import App, Service

ENVIRONMENT_MAX = 12
# Longest region name today (us-isof-south-1).
REGION_MAX = 15
ACCOUNT_ID = 12
# Longest AWS::URLSuffix (amazonaws.com.cn).
URL_SUFFIX_MAX = 16
ENVIRONMENT_PATTERN = r"^(?!aws|ecs|fargate)[a-z]([a-z0-9-]*[a-z0-9])?$"
RESERVED_PREFIX = re.compile(r"^(aws|ecs|fargate)")
# The execution role's policy grants these prefixes, so every log group and repository uses them.
LOG_GROUP_PREFIX = "/ecs/${EnvironmentName}/"
REPOSITORY_PREFIX = "${EnvironmentName}/"
REGISTRY = "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}"


@dataclass(frozen=True)
class Name:
    pattern: str  # a Fn::Sub string over EnvironmentName and pseudo parameters
    limit: int
    what: str

    def sub(self) -> Sub:
        return Sub(self.pattern)

    @property
    def longest(self) -> int:
        return len(self.pattern.replace("${EnvironmentName}", "e" * ENVIRONMENT_MAX)
                   .replace("${AWS::Region}", "r" * REGION_MAX).replace("${AWS::AccountId}", "0" * ACCOUNT_ID)
                   .replace("${AWS::URLSuffix}", "u" * URL_SUFFIX_MAX))


def cluster() -> Name:
    return Name("${EnvironmentName}", 255, "ECS cluster name")


def capacity_provider() -> Name:
    return Name("${EnvironmentName}-hosts", 255, "capacity provider name")


def load_balancer() -> Name:
    return Name("${EnvironmentName}-alb", 32, "load balancer name")


def network_load_balancer() -> Name:
    return Name("${EnvironmentName}-nlb", 32, "load balancer name")


def target_group(svc: Service) -> Name:
    return Name(f"${{EnvironmentName}}-{svc.name}", 32, "target group name")


def hosts_function() -> Name:
    return Name("${EnvironmentName}-hosts", 64, "Lambda function name")


def hosts_function_role() -> Name:
    return Name("${EnvironmentName}-${AWS::Region}-hosts-function", 64, "IAM role name")


def hosts_function_log_group() -> Name:
    # Under the app's log prefix: the app's key policy lets CloudWatch Logs encrypt only those groups.
    return Name(f"{LOG_GROUP_PREFIX}hosts-function", 512, "log group name")


def host_role() -> Name:
    return Name("${EnvironmentName}-${AWS::Region}-host", 64, "IAM role name")


def execution_role() -> Name:
    return Name("${EnvironmentName}-${AWS::Region}-execution", 64, "IAM role name")


def task_role(svc: Service) -> Name:
    return Name(f"${{EnvironmentName}}-${{AWS::Region}}-{svc.name}-task", 64, "IAM role name")


def task_family(svc: Service) -> Name:
    return Name(f"${{EnvironmentName}}-{svc.name}", 255, "task definition family")


def log_group(svc: Service) -> Name:
    return Name(f"{LOG_GROUP_PREFIX}{svc.name}", 512, "log group name")


# CloudWatch alarm names: at most 255 characters
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html). Each is
# `${EnvironmentName}-` and what it watches, so the topic policy and the key policy can admit this
# deployment's alarms by that prefix, and ECS's deployment alarms can name them before they exist.
ALARM_PREFIX = "${EnvironmentName}-"


def alarm(what: str) -> Name:
    return Name(f"{ALARM_PREFIX}{what}", 255, "alarm name")


def dashboard() -> Name:
    # Letters, digits, - and _ only, at most 255 characters:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html
    return Name("${EnvironmentName}", 255, "dashboard name")


def repository(repo: str) -> Name:
    return Name(f"{REPOSITORY_PREFIX}{repo}", 256, "ECR repository name")


def image(repo: str, tag: str) -> Name:
    """An image in one of the app's repositories; `tag` may be a ${Parameter}."""
    # ECS takes at most 255 characters for an image named by tag
    # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html).
    return Name(f"{REGISTRY}/{REPOSITORY_PREFIX}{repo}:{tag}", 255, "image name")


def validate(app: App, add) -> None:
    """Refuse names a deployment could push past an AWS limit."""
    from templates_src.app import mirror

    for i, svc in enumerate(app.services):
        candidates = [task_role(svc), task_family(svc), log_group(svc)]
        if svc.public:
            candidates.append(target_group(svc))
        if app.alarms:  # the longest of the service's alarm names (alarms.py)
            candidates.append(alarm(f"{svc.name}-target-5xx"))
        for name in candidates:
            if name.longest > name.limit:
                add(f"services[{i}].name", f"'{svc.name}' makes the {name.what} up to {name.longest} characters "
                                           f"(AWS limit {name.limit}, with an EnvironmentName of up to "
                                           f"{ENVIRONMENT_MAX}); shorten it by {name.longest - name.limit}")
        copy = mirror.copy_of(app, svc.image)
        for name in [repository(copy.repository), image(copy.repository, copy.tag)] if copy else []:
            if name.longest > name.limit:
                add(f"services[{i}].image", f"'{svc.image}' runs from a copy in ECR whose {name.what} is up to "
                                            f"{name.longest} characters (AWS limit {name.limit}, with an "
                                            f"EnvironmentName of up to {ENVIRONMENT_MAX}); use a shorter image name "
                                            "or tag")
                break  # the image name holds the repository's: one problem, said once
