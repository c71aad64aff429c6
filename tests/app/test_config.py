"""The app config: what the build refuses, where it says the problem is, and why.

Every refusal test starts from the default DKS config (`dks_data()`), changes one thing, and checks
the field path and the key fact of the reason. Everything a test writes goes under its tmp_path.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ROOT, app_from, dks_data, service, templates
from templates_src import render
from templates_src.app import capacity, config, instance_types, loading, names
from templates_src.app.config import ConfigError

DKS_DIR = config.DEFAULT_CONFIG.parent

# AWS limits the generated names must respect (ELBv2 target group Name, IAM RoleName).
TARGET_GROUP_NAME_MAX = 32
IAM_ROLE_NAME_MAX = 64
# Longest service names that keep every deployment under those limits:
# target group "${EnvironmentName}-<service>", task role "${EnvironmentName}-${AWS::Region}-<service>-task".
LONGEST_PUBLIC_NAME = TARGET_GROUP_NAME_MAX - names.ENVIRONMENT_MAX - len("-")
LONGEST_PRIVATE_NAME = IAM_ROLE_NAME_MAX - names.ENVIRONMENT_MAX - names.REGION_MAX - len("---task")


# --- helpers -------------------------------------------------------------------------------------


def refused(data: dict) -> dict[str, str]:
    """Parse and validate `data`, which must be refused; field path -> reason."""
    with pytest.raises(ConfigError) as caught:
        app_from(data)
    problems: dict[str, str] = {}
    for path, reason in caught.value.problems:
        problems[path] = f"{problems[path]}; {reason}" if path in problems else reason
    return problems


def only_problem(data: dict) -> tuple[str, str]:
    """The single (path, reason) a one-field change causes: anything else would hide the real cause."""
    problems = refused(data)
    assert len(problems) == 1, problems
    return next(iter(problems.items()))


def renamed(data: dict, old: str, new: str) -> dict:
    """Rename a service everywhere it is named: its entry, depends_on and {svc.*} references."""
    for svc in data["services"]:
        if svc["name"] == old:
            svc["name"] = new
        svc["depends_on"] = [new if dep == old else dep for dep in svc.get("depends_on", [])]
        svc["environment"] = {key: str(value).replace("{" + old + ".", "{" + new + ".")
                              for key, value in svc.get("environment", {}).items()}
    return data


def long_name(length: int) -> str:
    """A valid service name (DNS label) of exactly `length` characters."""
    return "svc" + "x" * (length - 3)


def suggested_types(reason: str) -> list[str]:
    """Instance types a capacity refusal suggests ("... use instance_type a / b / c (N instances)")."""
    found = re.search(r"use instance_type (\S+(?: / \S+)*) \(", reason)
    return found.group(1).split(" / ") if found else []


def a_service(desired: int, min_healthy: int, max_percent: int) -> config.Service:
    return config.Service(name="svc", port=8080, cpu=256, memory=512, image="nginx", desired_count=desired,
                          deployment=config.Deployment(min_healthy, max_percent))


def needed(app: config.App) -> int | None:
    """Hosts of the configured type the deployment peak needs."""
    return capacity.instances_needed(app, instance_types.TYPES[app.cluster.instance_type])


def write_config(data: dict, folder: Path) -> Path:
    """The config as a YAML file, with the files it embeds beside it (they resolve relative to it)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DKS_DIR / "db-init.sh", folder / "db-init.sh")
    path = folder / "app.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args: str) -> subprocess.CompletedProcess:
    # No bytecode: the CLI must not write anything but --out.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "templates_src", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=120)


# --- the default config ----------------------------------------------------------------------------


def test_default_config_is_accepted():
    app = app_from(dks_data())
    assert [s.name for s in app.services] == ["dks-db", "dks-api", "dks-ui"]
    assert loading.load(config.DEFAULT_CONFIG) == app


def test_dks_data_is_a_fresh_copy():
    # Every test mutates its copy; a shared one would make the tests depend on their order.
    first = dks_data()
    first["services"].clear()
    assert dks_data()["services"]


# --- 1. network ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cidr, fact", [
    ("10.0.0.0/33", "not an IPv4 CIDR block"),
    ("not-a-cidr", "not an IPv4 CIDR block"),
    ("10.20.0.1/16", "host bits set"),
    ("8.8.0.0/16", "not a private"),
    ("10.0.0.0/8", "/16 to /28"),
])
def test_bad_vpc_cidr_is_refused(cidr, fact):
    data = dks_data()
    data["network"]["cidr"] = cidr
    path, reason = only_problem(data)
    assert path == "network.cidr"
    assert fact in reason


def test_a_vpc_block_too_small_is_reported_once():
    # /29 also failed the subnet check ("must be between /29 and /27"), at network.subnet_prefix,
    # which a file relying on the default does not even have.
    data = dks_data()
    data["network"] = {"cidr": "10.0.0.0/29"}
    assert only_problem(data) == ("network.cidr", "a VPC block must be /16 to /28, got /29")


@pytest.mark.parametrize("cidr", ["0.0.0.0/16", "127.0.0.0/16", "169.254.0.0/16", "198.18.0.0/16"])
def test_special_purpose_ranges_are_refused_as_vpc_cidr(cidr):
    # 169.254.0.0/16 would also shadow the instance metadata service and the ECS task metadata endpoint.
    data = dks_data()
    data["network"]["cidr"] = cidr
    assert "network.cidr" in refused(data)


def test_subnets_that_do_not_fit_in_the_vpc_are_refused():
    # Two AZs need two /24 subnets; a /24 VPC holds one.
    data = dks_data()
    data["network"]["cidr"] = "10.0.0.0/24"
    path, reason = only_problem(data)
    assert path == "network.subnet_prefix"
    assert "2 subnets of /24 do not fit" in reason


def test_a_single_availability_zone_is_refused():
    data = dks_data()
    data["network"]["availability_zones"] = 1
    path, reason = only_problem(data)
    assert path == "network.availability_zones"
    assert "at least 2" in reason


@pytest.mark.parametrize("extra, accepted", [(0, True), (1, False)])
def test_description_up_to_what_main_yaml_can_carry(extra, accepted):
    # 1000 characters rendered a main.yaml whose Description cfn-lint (E1003) and CloudFormation refuse.
    longest = config.TEMPLATE_DESCRIPTION_BYTES - len(config.ROOT_DESCRIPTION.format(""))
    data = dks_data()
    data["description"] = "é" * (longest // 2) + "d" * (longest % 2 + extra)  # bytes count, not characters
    if accepted:
        app = app_from(data)
        assert len(render.stacks(app)["main.yaml"]["Description"].encode()) == config.TEMPLATE_DESCRIPTION_BYTES
        return
    path, reason = only_problem(data)
    assert path == "description" and f"at most {longest} bytes" in reason


@pytest.mark.parametrize("namespace", ["a" * 64 + ".local", ".".join(["x" * 63] * 4) + ".local"])
def test_namespace_longer_than_dns_allows_is_refused(namespace):
    # 310 characters rendered a discovery.yaml cfn-lint (E3031) and Cloud Map refuse; a 64-character
    # label passed cfn-lint but no DNS server takes it.
    data = dks_data()
    data["namespace"] = namespace
    assert only_problem(data) == ("namespace", "DNS allows at most 253 characters, 63 per label")


def test_longest_dns_namespace_is_accepted():
    data = dks_data()
    data["namespace"] = ".".join(["x" * 63] * 3 + ["y" * 61])  # 253 characters
    assert len(app_from(data).namespace) == 253


@pytest.mark.parametrize("length, accepted", [(2048, True), (2049, False)])
def test_secret_description_up_to_what_secrets_manager_takes(length, accepted):
    # Any length passed: 2100 characters rendered a secrets.yaml cfn-lint (E3033) refuses.
    data = dks_data()
    data["secrets"]["postgres-password"]["description"] = "d" * length
    if accepted:
        app_from(data)
        return
    assert only_problem(data) == ("secrets.postgres-password.description",
                                  "Secrets Manager allows at most 2048 characters")


# --- 2. service names ------------------------------------------------------------------------------


def test_duplicate_service_names_are_refused():
    data = dks_data()
    data["services"].append(copy.deepcopy(service(data, "dks-db")))
    path, reason = only_problem(data)
    assert path == "services[3].name"
    assert "duplicate service name 'dks-db'" in reason and "services[0]" in reason


# --- 3. listener ports and paths -----------------------------------------------------------------


def test_two_default_routes_on_one_listener_port_are_refused():
    data = dks_data()
    service(data, "dks-api")["public"] = {"port": 80}  # dks-ui already is the default on port 80
    path, reason = only_problem(data)
    assert path == "services[2].public"
    assert "port conflict" in reason and "'dks-api'" in reason and "default route" in reason and "80" in reason


def test_same_port_and_path_are_refused():
    data = dks_data()
    service(data, "dks-api")["public"] = {"port": 80, "path": "/app/*"}
    service(data, "dks-ui")["public"] = {"port": 80, "path": "/app/*"}
    path, reason = only_problem(data)
    assert path == "services[2].public"
    assert "port conflict" in reason and "path /app/*" in reason


def test_same_port_with_different_paths_is_accepted():
    data = dks_data()
    service(data, "dks-api")["public"] = {"port": 80, "path": "/api/*"}
    app = app_from(data)
    assert app.listener_ports == (80,)


@pytest.mark.parametrize("name", config.ROOT_OUTPUTS)
def test_url_output_taking_a_root_output_name_is_refused(name):
    # The root would get two outputs of one name: troposphere raised ValueError mid-render.
    data = dks_data()
    service(data, "dks-ui")["url_output"] = name
    path, reason = only_problem(data)
    assert path == "services[2].url_output"
    assert f"'{name}' is also used by the root stack" in reason


def test_two_services_with_one_url_output_are_refused():
    data = dks_data()
    service(data, "dks-ui")["url_output"] = "ApiUrl"
    assert only_problem(data) == ("services[2].url_output", "'ApiUrl' is also used by 'dks-api'")


def test_a_default_url_output_taken_is_reported_at_the_service_name():
    # dks-api's explicit url_output takes the name dks-ui's URL output gets by default. The problem
    # was reported at services[2].url_output, a field the file does not have.
    data = dks_data()
    service(data, "dks-api")["url_output"] = "DksUiUrl"
    del service(data, "dks-ui")["url_output"]
    assert only_problem(data) == ("services[2].name", "'DksUiUrl' is also used by 'dks-api'")


def test_a_clash_between_equal_services_names_the_later_one():
    # Service is a dataclass: app.services.index() found the first of two equal services.
    data = dks_data()
    data["services"].append(copy.deepcopy(service(data, "dks-ui")))
    problems = refused(data)
    assert problems["services[3].url_output"] == "'AppUrl' is also used by 'dks-ui'"
    assert "services[2].url_output" not in problems


# --- 4. dependencies -------------------------------------------------------------------------------


def test_unknown_dependency_is_refused():
    data = dks_data()
    service(data, "dks-api")["depends_on"].append("nope")
    path, reason = only_problem(data)
    assert path == "services[1].depends_on[1]"
    assert "unknown service 'nope'" in reason


@pytest.mark.parametrize("depends_on, cycle", [
    (["dks-api"], "dks-db -> dks-api -> dks-db"),
    (["dks-ui"], "dks-db -> dks-ui -> dks-api -> dks-db"),
])
def test_cyclic_dependencies_are_refused_naming_the_cycle(depends_on, cycle):
    data = dks_data()
    service(data, "dks-db")["depends_on"] = depends_on
    path, reason = only_problem(data)
    assert path == "services[0].depends_on"
    assert f"cyclic dependency: {cycle}" in reason


def test_self_dependency_is_refused():
    data = dks_data()
    service(data, "dks-db")["depends_on"] = ["dks-db"]
    path, reason = only_problem(data)
    assert path == "services[0].depends_on[0]"
    assert "'dks-db' cannot depend on itself" in reason


# --- 5. image architecture -------------------------------------------------------------------------


def test_arm64_image_on_x86_hosts_is_refused():
    data = dks_data()
    service(data, "dks-db")["architectures"] = ["arm64"]
    path, reason = only_problem(data)
    assert path == "services[0].architectures"
    assert "arm64" in reason and "t3.medium" in reason and "x86_64" in reason


def test_an_empty_architecture_list_is_refused():
    # It was refused with "the image exists for  but t3.medium hosts are x86_64: choose a  instance type".
    data = dks_data()
    service(data, "dks-db")["architectures"] = []
    assert only_problem(data) == ("services[0].architectures",
                                  "name at least one of x86_64, arm64, or leave it out (any)")


def test_arm64_image_on_graviton_hosts_is_accepted():
    # t4g.medium has t3.medium's shape (2 vCPUs, 4 GiB, 3 ENIs = 2 awsvpc tasks), so the same 2 hosts
    # hold the 5-task deployment peak: no max_size change is needed.
    t3, t4g = instance_types.TYPES["t3.medium"], instance_types.TYPES["t4g.medium"]
    assert (t4g.vcpus, t4g.memory_mib, t4g.max_enis, t4g.architecture) == (t3.vcpus, t3.memory_mib, t3.max_enis, "arm64")
    data = dks_data()
    service(data, "dks-db")["architectures"] = ["arm64"]
    data["cluster"]["instance_type"] = "t4g.medium"
    app = app_from(data)
    assert needed(app) == 2 < app.cluster.max_size


# --- 6. AWS name length limits ---------------------------------------------------------------------


def test_names_check_the_aws_limits():
    # The boundaries below are computed from the AWS limits; names.py must check against the same ones.
    svc = app_from(dks_data()).service("dks-ui")
    assert names.target_group(svc).limit == TARGET_GROUP_NAME_MAX
    assert names.task_role(svc).limit == IAM_ROLE_NAME_MAX


@pytest.mark.parametrize("length", [LONGEST_PUBLIC_NAME, LONGEST_PUBLIC_NAME + 1])
def test_public_service_name_and_target_group_limit(length):
    data = renamed(dks_data(), "dks-ui", long_name(length))  # dks-ui is public
    if length <= LONGEST_PUBLIC_NAME:
        app_from(data)
        return
    path, reason = only_problem(data)
    assert path == "services[2].name"
    assert "target group name" in reason and f"AWS limit {TARGET_GROUP_NAME_MAX}" in reason
    assert f"shorten it by {length - LONGEST_PUBLIC_NAME}" in reason


@pytest.mark.parametrize("length", [LONGEST_PRIVATE_NAME, LONGEST_PRIVATE_NAME + 1])
def test_private_service_name_and_iam_role_limit(length):
    data = renamed(dks_data(), "dks-db", long_name(length))  # dks-db is not public: no target group
    if length <= LONGEST_PRIVATE_NAME:
        app_from(data)
        return
    path, reason = only_problem(data)
    assert path == "services[0].name"
    assert "IAM role name" in reason and f"AWS limit {IAM_ROLE_NAME_MAX}" in reason


def test_longest_accepted_task_role_fits_in_every_region():
    regions = pytest.importorskip("cfnlint.helpers").REGIONS
    longest_region = max(regions, key=len)
    data = renamed(dks_data(), "dks-db", long_name(LONGEST_PRIVATE_NAME))
    svc = app_from(data).service(long_name(LONGEST_PRIVATE_NAME))
    role = names.task_role(svc).pattern.replace("${EnvironmentName}", "e" * names.ENVIRONMENT_MAX)
    role = role.replace("${AWS::Region}", longest_region)
    assert len(role) <= IAM_ROLE_NAME_MAX, f"{role} in {longest_region}"


# --- 7. ECS task size limits -----------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [("cpu", 64), ("cpu", 200000), ("memory", 4)])
def test_task_size_outside_ecs_limits_is_refused(field, value):
    data = dks_data()
    service(data, "dks-api")[field] = value
    path, reason = only_problem(data)
    assert path == f"services[1].{field}"
    assert str(value) in reason and "outside what ECS accepts" in reason


# --- 8. image or repository ------------------------------------------------------------------------


def test_service_without_image_or_repository_is_refused():
    data = dks_data()
    del service(data, "dks-db")["image"]
    path, reason = only_problem(data)
    assert path == "services[0]"
    assert "set exactly one of image" in reason


def test_service_with_image_and_repository_is_refused():
    data = dks_data()
    service(data, "dks-db")["repository"] = "dks-db"
    path, reason = only_problem(data)
    assert path == "services[0]"
    assert "not both" in reason


def test_repositories_giving_one_logical_id_are_refused():
    # r-1 and r1 both make R1Repository in registry.yaml: the render crashed on the duplicate.
    data = dks_data()
    service(data, "dks-api")["repository"] = "dks-api-1"
    service(data, "dks-ui")["repository"] = "dks-api1"
    path, reason = only_problem(data)
    assert path == "services[2].repository"
    assert "'dks-api1' and 'dks-api-1' give the same resource names" in reason


def test_services_may_share_a_repository():
    data = dks_data()
    service(data, "dks-ui")["repository"] = "dks-api"
    assert app_from(data).repositories == ("dks-api",)


# --- 9. capacity ---------------------------------------------------------------------------------


def test_deployment_peak_that_does_not_fit_says_what_would():
    # t3.medium runs 2 awsvpc tasks (3 ENIs - 1); DKS peaks at 5 tasks: 3 + 1 surge each for api and ui.
    # The bridge UI's two take no ENI: the db and two api tasks need 3 ENIs, so 2 hosts.
    data = dks_data()
    data["cluster"]["max_size"] = 1
    path, reason = only_problem(data)
    assert path == "cluster"
    assert "5 tasks (2 of them rolling-deployment surge) need 3 task ENIs" in reason
    assert "set cluster.max_size to 2" in reason
    # The bigger types it suggests must really fit on the 2 hosts.
    types = suggested_types(reason)
    assert types, reason
    for name in types:
        data["cluster"]["instance_type"] = name
        assert needed(app_from(data)) <= 2


def test_task_larger_than_the_instance_is_refused():
    data = dks_data()
    service(data, "dks-api")["memory"] = 16000
    path, reason = only_problem(data)
    assert path == "services[1]"
    assert "larger than a whole t3.medium" in reason and "16000 MiB" in reason
    # The types it suggests instead must really take the task (on the configured max_size hosts).
    types = suggested_types(reason)
    assert types, reason
    for name in types:
        data["cluster"]["instance_type"] = name
        app_from(data)


def test_rolling_deployment_surge_counts_towards_capacity():
    app = app_from(dks_data())
    assert needed(app) == 2 < app.cluster.max_size  # the api's surge task takes a second host's ENI
    # Without surge (stop the old task first) the same tasks need one host less...
    data = dks_data()
    for name in ("dks-api", "dks-ui"):
        service(data, name)["deployment"] = {"min_healthy_percent": 0, "max_percent": 100}
    no_surge = app_from(data)
    assert [s.desired_count for s in no_surge.services] == [s.desired_count for s in app.services]
    assert needed(no_surge) == 1
    # ...so max_size 1 is then accepted.
    data["cluster"]["max_size"] = 1
    app_from(data)


def test_bridge_tasks_take_no_network_interface():
    # The same three services, all awsvpc: the UI's tasks take ENIs again and the peak needs 3 hosts.
    data = dks_data()
    service(data, "dks-ui")["network_mode"] = "awsvpc"
    assert needed(app_from(data)) == 3
    placed = capacity.placement(app_from(dks_data()), instance_types.TYPES["t3.medium"])
    assert [sorted((t.service, t.eni) for t in host) for host in placed] == [
        [("dks-api", True), ("dks-api", True), ("dks-ui", False), ("dks-ui", False)], [("dks-db", True)]]


@pytest.mark.parametrize("desired, min_healthy, max_percent, extra", [
    (1, 100, 200, 1),  # must start the new task before stopping the old one
    (1, 0, 100, 0),    # may stop the old task first
    (3, 50, 200, 0),   # may stop one of three first
    (0, 100, 200, 0),  # nothing to replace
])
def test_surge(desired, min_healthy, max_percent, extra):
    assert capacity.surge(a_service(desired, min_healthy, max_percent)) == extra


def test_deployment_with_no_room_to_replace_a_task_is_refused():
    data = dks_data()
    service(data, "dks-api")["deployment"] = {"min_healthy_percent": 100, "max_percent": 100}
    path, reason = only_problem(data)
    assert path == "services[1].deployment"
    assert "no room" in reason


def test_max_size_above_what_the_template_allows_is_refused():
    data = dks_data()
    data["cluster"]["max_size"] = config.MAX_INSTANCES + 1
    assert "cluster.max_size" in refused(data)


def test_a_peak_beyond_the_largest_cluster_is_refused_not_crashed():
    # Needs more hosts than any template allows: the fit check must refuse it with advice, and the
    # renderer must never see it (it would have nothing to offer as InstanceType).
    data = dks_data()
    # the most hosts DKS may have (its bridge UI's calls bound it below the template's own bound)
    data["cluster"]["max_size"] = capacity.max_hosts(app_from(dks_data()))
    service(data, "dks-api")["desired_count"] = 250  # 250 + 1 surge tasks, 2 per t3.medium
    path, reason = only_problem(data)
    assert path == "cluster"
    assert "do not fit" in reason


def test_a_single_retry_is_refused_for_a_public_service_only():
    # retries is also the target group's UnhealthyThresholdCount, which ELB takes from 2 to 10:
    # one retry rendered a template cfn-lint (E3034) and CloudFormation refuse.
    data = dks_data()
    service(data, "dks-db")["health_check"]["retries"] = 1  # not public: only the container check
    app_from(data)
    service(data, "dks-api")["health_check"]["retries"] = 1
    path, reason = only_problem(data)
    assert path == "services[1].health_check.retries"
    assert "at least 2" in reason


# --- 10. cluster sizes and instance type -----------------------------------------------------------


def test_cluster_sizes_out_of_order_are_refused():
    data = dks_data()
    data["cluster"].update(min_size=4, max_size=3)
    path, reason = only_problem(data)
    assert path == "cluster"
    assert "need min_size <= max_size, got 4 / 3" in reason


@pytest.mark.parametrize("min_size", [-1, config.MIN_SIZE_MAX + 1])
def test_min_size_outside_the_templates_bounds_is_refused(min_size):
    data = dks_data()
    data["cluster"].update(min_size=min_size, max_size=config.MAX_INSTANCES)
    path, reason = only_problem(data)
    assert path == "cluster.min_size"
    assert f"between 0 and {config.MIN_SIZE_MAX}" in reason


def test_a_desired_capacity_is_refused_with_what_to_do():
    # Managed scaling chooses it; a fixed one would be reset by every update that touches the group.
    data = dks_data()
    data["cluster"]["desired_capacity"] = 2
    path, reason = only_problem(data)
    assert path == "cluster.desired_capacity"
    assert reason.startswith("no longer set: the capacity provider's managed scaling") and "remove it" in reason


def test_unknown_instance_type_suggests_a_close_name():
    data = dks_data()
    data["cluster"]["instance_type"] = "t3.meduim"
    path, reason = only_problem(data)
    assert path == "cluster.instance_type"
    assert "unknown instance type 't3.meduim'" in reason and "t3.medium" in reason


# --- 11. loading -----------------------------------------------------------------------------------


def test_unknown_key_suggests_the_known_one():
    data = dks_data()
    data["services"][0]["imagee"] = data["services"][0].pop("image")
    path, reason = only_problem(data)
    assert path == "services[0].imagee"
    assert "did you mean 'image'" in reason


def test_wrong_type_is_refused_with_its_path():
    data = dks_data()
    data["services"][1]["cpu"] = "lots"
    path, reason = only_problem(data)
    assert path == "services[1].cpu"
    assert "expected an integer" in reason and "'lots'" in reason


@pytest.mark.parametrize("where, key, path", [
    (lambda d: d["services"][1], "port", "services[1].port"),
    (lambda d: d, "name", "name"),
], ids=["service port", "app name"])
def test_missing_required_field_is_refused(where, key, path):
    data = dks_data()
    del where(data)[key]
    assert only_problem(data) == (path, "required")


def test_malformed_yaml_reports_the_line(tmp_path):
    lines = config.DEFAULT_CONFIG.read_text().splitlines()
    line = lines.index("  max_size: 3")
    lines[line] = "  max_size: 3: 4"  # a mapping value where a scalar ends
    path = tmp_path / "app.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    [(where, reason)] = caught.value.problems
    assert "not valid YAML" in reason and f"line {line + 1}," in reason and str(path) in reason


@pytest.mark.parametrize("name, error", [("missing.yaml", "No such file"), (".", "Is a directory")])
def test_unreadable_config_is_refused(tmp_path, name, error):
    path = tmp_path / name
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    [(where, reason)] = caught.value.problems
    assert "cannot read config" in reason and error in reason


def test_unreadable_embedded_file_is_refused_with_its_path(tmp_path):
    # The config loads fine, but db-init.sh is not beside it.
    path = write_config(dks_data(), tmp_path)
    (tmp_path / "db-init.sh").unlink()
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    assert caught.value.problems == [("services[0].files./docker-entrypoint-initdb.d/0_0_db.sh",
                                      "cannot read db-init.sh: No such file or directory")]


@pytest.mark.parametrize("text, fact", [
    ("", "is empty"),
    ("# nothing but a comment\n", "is empty"),
    ("- name: dks\n", "holds a list"),
    ("dks\n", "holds str 'dks'"),
])
def test_a_document_that_is_not_a_mapping_is_refused(tmp_path, text, fact):
    path = tmp_path / "app.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    [(where, reason)] = caught.value.problems
    assert where == "" and f"{path} {fact}" in reason and "mapping" in reason


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path):
    # PyYAML keeps the last of two equal keys: the first environment block vanished silently.
    lines = config.DEFAULT_CONFIG.read_text().splitlines()
    first = lines.index("    environment:")
    lines.insert(first + 1, "      PGPORT: '5433'")
    path = tmp_path / "app.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    [(where, reason)] = caught.value.problems
    second = next(n for n, line in enumerate(lines) if n > first + 1 and line == "      PGPORT: \"{dks-db.port}\"")
    assert f"is not valid YAML at line {second + 1}, column 7: duplicate key 'PGPORT' (first at line {first + 2})" \
        in reason


def test_plain_values_read_as_yaml_1_2(tmp_path):
    # PyYAML reads YAML 1.1: `on`, `yes`, `12:30`, `1_000` became "true", "true", "750", "1000"
    # in the container's environment, and a date was refused as "expected a string, got date".
    lines = config.DEFAULT_CONFIG.read_text().splitlines()
    env = lines.index("      SPRING_PROFILES_ACTIVE: dev")
    lines[env + 1:env + 1] = ["      FLAG: on", "      ENABLED: yes", "      AT: 12:30", "      LIMIT: 1_000",
                              "      SINCE: 2024-01-01", "      DEBUG: false", "      PORT: 8080", "      RATIO: 0.5"]
    path = tmp_path / "app.yaml"
    path.write_text("\n".join(lines).replace("cpu: 512", "cpu: 0x200") + "\n")
    shutil.copy(DKS_DIR / "db-init.sh", tmp_path / "db-init.sh")
    api = loading.load(path).service("dks-api")
    expected = {"FLAG": "on", "ENABLED": "yes", "AT": "12:30", "LIMIT": "1_000", "SINCE": "2024-01-01",
                "DEBUG": "false", "PORT": "8080", "RATIO": "0.5"}
    assert {key: api.environment[key] for key in expected} == expected
    assert api.cpu == 512


@pytest.mark.parametrize("value, got", [("yes", "str 'yes'"), ("true", "bool True"), ("1_024", "str '1_024'"),
                                        ("1024.0", "float 1024.0"), ("", "nothing")])
def test_an_integer_field_takes_only_an_integer(tmp_path, value, got):
    path = write_config(dks_data(), tmp_path)  # with db-init.sh beside it
    path.write_text(config.DEFAULT_CONFIG.read_text().replace("cpu: 512", f"cpu: {value}"))
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    assert caught.value.problems == [("services[1].cpu", f"expected an integer, got {got}")]


def test_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "app.yaml"
    shutil.copy(DKS_DIR / "db-init.sh", tmp_path / "db-init.sh")
    text = config.DEFAULT_CONFIG.read_text().replace("cluster:\n", "cluster:\n  <<: {max_size: 9, min_size: 1}\n", 1)
    path.write_text(text)
    assert loading.load(path).cluster.max_size == 3


@pytest.mark.parametrize("value, what", [("!!int abc", "int"), ("!!bool maybe", "bool"), ("!!float x", "float"),
                                         ("!!timestamp soon", "timestamp")])
def test_a_tagged_value_yaml_cannot_read_reports_the_line(tmp_path, value, what):
    # PyYAML's constructors raised ValueError, KeyError or AttributeError here: a traceback.
    path = tmp_path / "app.yaml"
    path.write_text(f"name: dks\nkeep_images: {value}\n")
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    [(where, reason)] = caught.value.problems
    assert f"{path} is not valid YAML at line 2, column 14" in reason and f"as {what}" in reason


def test_a_config_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_bytes(b"name: d\xe9mo\n")  # Latin-1
    with pytest.raises(ConfigError) as caught:
        loading.load(path)
    [(where, reason)] = caught.value.problems
    assert f"{path} is not UTF-8 text: byte 0xe9 at offset 7" in reason


# --- 12. environment references and secrets ------------------------------------------------------


@pytest.mark.parametrize("field, key, value, path, fact", [
    ("environment", "OTHER", "{nope.host}", "services[1].environment.OTHER", "unknown service 'nope'"),
    # dks-db has no URL: it is not behind the load balancer.
    ("environment", "DB_URL", "{dks-db.url}", "services[1].environment.DB_URL", "not public"),
    ("secrets", "TOKEN", "api-token", "services[1].secrets.TOKEN", "unknown secret 'api-token'"),
])
def test_references_to_what_does_not_exist_are_refused(field, key, value, path, fact):
    data = dks_data()
    service(data, "dks-api")[field][key] = value
    found, reason = only_problem(data)
    assert found == path
    assert fact in reason


# --- 13. the CLI -----------------------------------------------------------------------------------


def test_cli_refuses_a_bad_config_and_leaves_out_untouched(tmp_path):
    out = tmp_path / "out"
    shutil.copytree(ROOT / "build", out)  # a previous good render
    before = snapshot(out)
    data = dks_data()
    data["services"][1]["cpu"] = 64
    bad = write_config(data, tmp_path / "bad")
    around = sorted(tmp_path.iterdir())

    result = cli("build", "--config", str(bad), "--out", str(out))

    assert result.returncode == 2, result.stderr
    assert "services[1] (dks-api).cpu" in result.stderr and "64 CPU units" in result.stderr
    assert snapshot(out) == before
    assert sorted(tmp_path.iterdir()) == around  # no staging folder left behind


@pytest.mark.parametrize("text, expected", [
    (b"name: dks\nservices: [\n", ["is not valid YAML at line 3, column 1"]),
    (b"name: dks\nkeep_images: !!int ten\n", ["is not valid YAML at line 2, column 14", "as int"]),
    (b"name: d\xe9mo\n", ["is not UTF-8 text"]),
    (b"- dks\n", ["holds a list"]),
    (b"", ["is empty"]),
], ids=["syntax", "tag", "encoding", "list", "empty"])
def test_cli_refuses_a_file_that_is_no_config_without_a_traceback(tmp_path, text, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(text)
    result = cli("build", "--config", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: {bad} is not a deployable app config:" in result.stderr
    assert str(bad) in result.stderr.splitlines()[1]
    assert all(fact in result.stderr for fact in expected), result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_names_the_field_of_a_wrong_type(tmp_path):
    data = dks_data()
    data["services"][0]["cpu"] = "abc"
    data["cluster"]["max_sise"] = data["cluster"].pop("max_size")
    result = cli("build", "--config", str(write_config(data, tmp_path)), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "  services[0] (dks-db).cpu: expected an integer, got str 'abc'\n" in result.stderr
    assert "  cluster.max_sise: unknown key (did you mean 'max_size'?)\n" in result.stderr


def test_cli_renders_a_good_config(tmp_path):
    out = tmp_path / "out"
    result = cli("build", "--out", str(out))
    assert result.returncode == 0, result.stderr
    expected = render.render(loading.load(config.DEFAULT_CONFIG), "templates_src/apps/dks/app.yaml")
    assert {path.name: path.read_text() for path in out.iterdir()} == expected
    assert "main.yaml" in expected and "services.yaml" in expected


# --- 14. properties ------------------------------------------------------------------------------

TYPES = sorted(instance_types.TYPES)


def mostly(typical: st.SearchStrategy, wild: st.SearchStrategy) -> st.SearchStrategy:
    """Usually a typical value, one time in ten anything: with ~20 fields mutated at once, uniform
    choices would make nearly every config invalid and leave the accepting branch untested."""
    return st.integers(0, 9).flatmap(lambda n: wild if n == 0 else typical)


@st.composite
def mutated_configs(draw) -> dict:
    """The default config with random sizes, counts, ports, deployments and instance type."""
    data = dks_data()
    cluster = data["cluster"]
    cluster["instance_type"] = draw(st.sampled_from(TYPES))
    cluster["max_size"] = draw(mostly(st.integers(2, 12), st.integers(-1, config.MAX_INSTANCES + 10)))
    for svc in data["services"]:
        svc["cpu"] = draw(mostly(st.sampled_from([128, 256, 512, 1024, 2048]), st.integers(-10, 200_000)))
        svc["memory"] = draw(mostly(st.sampled_from([128, 512, 1024, 2048, 6000]), st.integers(-10, 140_000)))
        svc["desired_count"] = draw(mostly(st.integers(0, 3), st.integers(-2, 1001)))
        svc["port"] = draw(mostly(st.sampled_from([80, 3000, 5432, 8080]), st.integers(-1, 70_000)))
        if "data" in svc:  # one task at a time on its data, mostly
            svc["desired_count"] = draw(mostly(st.integers(0, 1), st.integers(-2, 3)))
        minimum, maximum = draw(mostly(st.sampled_from([(0, 100)] if "data" in svc else
                                                       [(100, 200), (0, 100), (50, 200), (50, 150)]),
                                       st.tuples(st.integers(-1, 101), st.integers(99, 201))))
        svc["deployment"] = {"min_healthy_percent": minimum, "max_percent": maximum}
        if "public" in svc:  # dks-api and dks-ui: equal ports are a conflict
            svc["public"] = {"port": draw(mostly(st.sampled_from([80, 8080, 8081]), st.integers(-1, 70_000)))}
    return data


def test_mutated_configs_are_accepted_only_when_they_fit(hypothesis_home):
    outcomes = {"accepted": 0, "refused": 0}

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated_configs())
    def check(data):
        try:
            app = app_from(data)
        except ConfigError as err:  # any other exception fails the test
            assert err.problems and all(isinstance(p, str) and r for p, r in err.problems)
            outcomes["refused"] += 1
            return
        hosts = needed(app)
        assert hosts is not None and hosts <= app.cluster.max_size
        # The template offers the configured type among the ones the tasks fit on.
        assert app.cluster.instance_type in capacity.allowed_instance_types(app)
        outcomes["accepted"] += 1

    check()
    # Both branches ran, so the property is not vacuous.
    assert outcomes["accepted"] and outcomes["refused"], outcomes


def test_data_needs_one_task_at_a_time_and_a_real_directory():
    data = dks_data()
    db = service(data, "dks-db")
    db["deployment"] = {"min_healthy_percent": 100, "max_percent": 200}
    db["data"]["path"] = "relative/dir"
    with pytest.raises(ConfigError) as refused:
        app_from(data)
    where = dict(refused.value.problems)
    assert "one task at a time" in where["services[0].data"]
    assert "absolute container directory" in where["services[0].data.path"]


def test_persistence_is_efs_or_none():
    data = dks_data()
    data["persistence"] = "s3"
    with pytest.raises(ConfigError) as refused:
        app_from(data)
    (path, reason), = refused.value.problems
    assert path == "persistence" and "efs" in reason and "none" in reason
    data["persistence"] = "none"
    assert app_from(data).stored_services == ()


def test_hosts_whose_addresses_the_load_balancer_keeps_stay_within_the_groups_rule_quota():
    # The bridge UI calls the API's URL on one port: one rule per host, at most 60 in a group.
    data = dks_data()
    data["cluster"]["max_size"] = 61
    path, reason = only_problem(data)
    assert path == "cluster.max_size" and reason.startswith("at most 60 here")
    data["cluster"]["max_size"] = 60
    assert app_from(data).cluster.max_size == 60
    main = templates(app_from(data))["main.yaml"]
    assert main["Parameters"]["MaxSize"]["MaxValue"] == 60
    # without a bridge service calling a URL, the template's own bound
    service(data, "dks-ui")["environment"]["KNOWLEDGE_SHARE_API"] = "http://api.example.com"
    data["cluster"]["max_size"] = config.MAX_INSTANCES
    assert templates(app_from(data))["main.yaml"]["Parameters"]["MaxSize"]["MaxValue"] == config.MAX_INSTANCES
