"""make plan: placement from the fit check, host counts, and every cost line recomputed from prices.json.

Expected values are computed here from the config, capacity.py and the price table, never typed in,
so a changed price or config moves both sides. Everything a test writes goes under its tmp_path.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from helpers import DKS_DIR, ROOT, app_from, dks_data, templates
from templates_src import plan
from templates_src.app import capacity, instance_types

PRICES = plan.load_prices()
HOURLY = {"ec2", "alb_hour", "alb_lcu", "nlb_hour", "nlb_lcu", "public_ipv4", "nat_hour"}


def unit_price(item: str, region: str, itype: str) -> float:
    prices = PRICES["items"][item]["prices"][region]
    return prices[itype] if item == "ec2" else prices


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "templates_src", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def dks_plan(dks) -> plan.Plan:
    return plan.make(dks)


# --- placement and host counts -------------------------------------------------------------------


def test_placed_tasks_are_the_configs_tasks_plus_surge(dks, dks_plan):
    placed = Counter((name, surge) for host in dks_plan.placement for name, surge in host.tasks)
    for svc in dks.services:
        assert placed[(svc.name, False)] == svc.desired_count
        assert placed[(svc.name, True)] == capacity.surge(svc)
    assert sum(placed.values()) == sum(s.desired_count + capacity.surge(s) for s in dks.services)


def test_per_host_use_sums_the_tasks_and_the_rest_is_left(dks, dks_plan):
    offer = capacity.host(instance_types.TYPES[dks.cluster.instance_type], dks.cluster.reserved_memory_mib)
    for host in dks_plan.placement:
        services = [dks.service(name) for name, _ in host.tasks]
        # A bridge task (the UI) shares its host's interface: only awsvpc tasks take one.
        assert host.enis.used == sum(s.network_mode == "awsvpc" for s in services) and host.enis.capacity == offer.slots
        assert host.cpu.used == sum(s.cpu for s in services) and host.cpu.capacity == offer.cpu
        assert host.memory.used == sum(s.memory for s in services) and host.memory.capacity == offer.memory
        for kind in (host.enis, host.cpu, host.memory):
            assert kind.left == kind.capacity - kind.used >= 0


def test_host_counts_are_the_fit_checks(dks, dks_plan):
    itype = instance_types.TYPES[dks.cluster.instance_type]
    assert dks_plan.hosts_peak == capacity.instances_needed(dks, itype) == len(dks_plan.placement)
    assert dks_plan.hosts_steady == len(capacity.placement(dks, itype, surge=False))
    # Without an override the plan bills what managed scaling settles on, within the group's bounds.
    assert dks_plan.hosts == min(max(dks_plan.hosts_steady, dks.cluster.min_size), dks.cluster.max_size)
    assert dks_plan.hosts_peak > dks_plan.hosts  # DKS: the rolling deployment needs a third host
    assert any("rolling deployment needs" in note for note in dks_plan.notes)


def test_a_bigger_type_places_on_fewer_hosts(dks):
    bigger = plan.make(dks, instance_type="c5.xlarge")
    assert bigger.hosts_peak == capacity.instances_needed(dks, instance_types.TYPES["c5.xlarge"]) < 3
    assert bigger.public.line("ec2").price == unit_price("ec2", "us-east-1", "c5.xlarge")


# --- cost lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1"])
def test_every_line_is_unit_price_times_quantity_times_hours(dks, region):
    result = plan.make(dks, region=region)
    hours = PRICES["hours_per_month"]
    for variant in (result.public, result.nat):
        for line in variant.lines:
            assert line.price == unit_price(line.item, region, result.instance_type), line
            assert line.hours == (hours if line.item in HOURLY else 1), line
            assert line.monthly == round(line.quantity * line.price * line.hours, 2), line
        assert variant.total == round(sum(line.monthly for line in variant.lines), 2)


def test_quantities_come_from_the_config(dks, dks_plan):
    azs = dks.network.availability_zones
    public, nat = dks_plan.public, dks_plan.nat
    assert public.line("ec2").quantity == dks_plan.hosts
    assert public.line("ebs_gp3").quantity == dks_plan.hosts * dks.cluster.root_volume_gib
    assert public.line("alb_hour").quantity == 1
    assert public.line("public_ipv4").quantity == dks_plan.hosts + azs  # every host, and the ALB in each AZ
    assert public.line("secret").quantity == len(dks.secrets)
    assert public.line("cloud_map_namespace").quantity == 1
    keys = [r for t in templates(dks).values() for r in t["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    assert public.line("kms_key").quantity == len(keys) == 1
    assert public.line("efs_standard").quantity == plan.Assumptions().efs_gb > 0  # dks-db keeps its data on EFS
    data = dks_data()
    data["persistence"] = "none"
    without = plan.make(app_from(data))
    assert without.public.line("efs_standard").quantity == 0
    assert without.public.line("efs_standard").note.startswith("not in this config")
    assert nat.line("nat_hour").quantity == azs
    assert nat.line("public_ipv4").quantity == azs + azs  # the ALB's and each NAT gateway's; hosts none
    assert "nat_hour" not in {line.item for line in public.lines}


def test_nat_variant_costs_the_nat_lines_minus_the_public_ipv4_saved(dks_plan):
    nat_lines = dks_plan.nat.line("nat_hour").monthly + dks_plan.nat.line("nat_gb").monthly
    saved = dks_plan.public.line("public_ipv4").monthly - dks_plan.nat.line("public_ipv4").monthly
    assert dks_plan.delta == round(nat_lines - saved, 2) > 0
    shared = {line.item for line in dks_plan.public.lines} - {"public_ipv4"}
    assert all(dks_plan.public.line(i) == dks_plan.nat.line(i) for i in shared)


def test_more_hosts_cost_their_instances_disks_and_addresses(dks, dks_plan):
    more = plan.make(dks, hosts=dks_plan.hosts + 2)
    gained = more.public.total - dks_plan.public.total
    expected = sum(more.public.line(i).monthly - dks_plan.public.line(i).monthly
                   for i in ("ec2", "ebs_gp3", "public_ipv4"))
    assert round(gained, 2) == round(expected, 2) > 0


def test_assumptions_move_only_their_lines(dks, dks_plan):
    other = plan.make(dks, assumptions=plan.Assumptions(alb_lcus=3, log_gb=50, nat_gb=500))
    assert other.public.line("alb_lcu").quantity == 3
    assert other.public.line("logs_ingest").quantity == 50
    assert other.nat.line("nat_gb").quantity == 500
    assert other.public.line("ec2") == dks_plan.public.line("ec2")


def test_region_switch_changes_prices(dks, dks_plan):
    frankfurt = plan.make(dks, region="eu-central-1")
    itype = dks.cluster.instance_type
    assert unit_price("ec2", "eu-central-1", itype) != unit_price("ec2", "us-east-1", itype)
    assert frankfurt.public.line("ec2").price == unit_price("ec2", "eu-central-1", itype)
    assert frankfurt.public.total != dks_plan.public.total
    assert [line.quantity for line in frankfurt.public.lines] == [line.quantity for line in dks_plan.public.lines]


# --- refusals ------------------------------------------------------------------------------------


def test_unknown_region_is_refused_with_the_regions_that_have_prices(dks):
    with pytest.raises(plan.PlanError) as caught:
        plan.make(dks, region="ap-south-1")
    assert "ap-south-1" in str(caught.value)
    for region in PRICES["items"]["ec2"]["prices"]:
        assert region in str(caught.value)


def test_type_without_a_price_in_the_region_is_refused_with_what_is_priced(dks):
    priced = PRICES["items"]["ec2"]["prices"]["eu-west-1"]
    missing = next(t for t in capacity.allowed_instance_types(dks) if t not in priced)
    with pytest.raises(plan.PlanError) as caught:
        plan.make(dks, region="eu-west-1", instance_type=missing)
    assert f"no eu-west-1 price for {missing}" in str(caught.value)
    assert all(t in str(caught.value) for t in priced)


@pytest.mark.parametrize("name, reason", [("t4g.medium", "not an InstanceType the template offers"),
                                          ("t9.huge", "unknown instance type")])
def test_type_the_template_does_not_offer_is_refused(dks, name, reason):
    with pytest.raises(plan.PlanError) as caught:
        plan.make(dks, instance_type=name)
    assert reason in str(caught.value) and dks.cluster.instance_type in str(caught.value)


def test_fewer_hosts_than_the_tasks_need_is_refused(dks, dks_plan):
    with pytest.raises(plan.PlanError) as caught:
        plan.make(dks, hosts=dks_plan.hosts_steady - 1)
    assert f"need {dks_plan.hosts_steady} x" in str(caught.value)


def test_every_instance_type_is_priced_in_us_east_1():
    assert set(instance_types.TYPES) <= set(PRICES["items"]["ec2"]["prices"]["us-east-1"])


def test_price_table_names_its_date_currency_and_sources():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", PRICES["as_of"]) and PRICES["currency"] == "USD"
    regions = set(PRICES["items"]["ec2"]["prices"])
    assert {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1"} <= regions
    for name, item in PRICES["items"].items():
        assert item["source"].startswith("https://aws.amazon.com/"), name
        assert set(item["prices"]) == regions, name
        assert set(item["unconfirmed"]) <= regions, name


# --- rendering and the command -------------------------------------------------------------------


def test_json_matches_the_text(dks_plan):
    data = json.loads(plan.to_json(dks_plan))
    totals = [float(t.replace(",", "")) for t in re.findall(r"^\s+total\s+\$([\d,.]+)", plan.text(dks_plan), re.M)]
    assert totals == [data["public"]["total"], data["nat"]["total"]]
    assert data["nat_minus_public"] == round(data["nat"]["total"] - data["public"]["total"], 2)
    assert [line["monthly"] for line in data["public"]["lines"]] == [line.monthly for line in dks_plan.public.lines]
    assert data["hosts"] == {"billed": dks_plan.hosts, "steady": dks_plan.hosts_steady, "peak": dks_plan.hosts_peak,
                             "min_size": dks_plan.min_size, "max_size": dks_plan.max_size}


def test_command_prints_the_plan_and_json():
    text = run("plan")
    assert text.returncode == 0, text.stderr
    assert "Placement at the deployment peak" in text.stdout and "NAT variant:" in text.stdout
    data = json.loads(run("plan", "--format", "json", "--region", "us-west-2").stdout)
    assert data["region"] == "us-west-2" and data["public"]["total"] > 0


@pytest.mark.parametrize("args, message", [
    (["--region", "nowhere-1"], "regions with prices"),
    (["--instance-type", "t4g.medium"], "not an InstanceType the template offers"),
    (["--hosts", "0"], "the tasks need 1 x t3.medium"),
    (["--alb-lcus", "-1"], "is negative"),
])
def test_command_refusals_exit_2_without_a_traceback(args, message):
    result = run("plan", *args)
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


def test_config_the_fit_check_refuses_exits_2_without_a_traceback(tmp_path):
    shutil.copytree(DKS_DIR, tmp_path / "app")
    data = dks_data()
    data["cluster"]["max_size"] = 1
    (tmp_path / "app" / "app.yaml").write_text(yaml.safe_dump(data))
    result = run("plan", "--config", str(tmp_path / "app" / "app.yaml"))
    assert result.returncode == 2
    assert "is not a deployable app config" in result.stderr and "do not fit" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_variant_config_is_planned_from_its_own_fields():
    data = dks_data()
    data["network"]["availability_zones"] = 3
    data["cluster"]["root_volume_gib"] = 40
    app = app_from(data)
    result = plan.make(app)
    assert result.public.line("public_ipv4").quantity == result.hosts + 3
    assert result.nat.line("nat_hour").quantity == 3
    assert result.public.line("ebs_gp3").quantity == result.hosts * 40


def test_build_does_not_import_the_plan(tmp_path):
    code = ("import sys; from templates_src import __main__ as m; "
            f"m.main(['build', '--out', {str(tmp_path / 'out')!r}]); print('templates_src.plan' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("False")


def test_the_readme_quotes_the_plan_as_it_is():
    # The README shows `make plan` for DKS: a change to the config, the fit check or a price moves it.
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```\nPlan for dks in us-east-1") + len("```\n")
    assert readme[start:readme.index("```", start)] == run("plan").stdout


def test_the_readme_quotes_the_fit_checks_refusal_as_it_is(tmp_path):
    # Its example is DKS with max_size 1, wrapped at 100 columns; the words must be the build's.
    readme = (ROOT / "README.md").read_text()
    start = readme.index("```\nerror: my-app.yaml is not a deployable app config:") + len("```\n")
    quoted = " ".join(readme[start:readme.index("```", start)].split())
    shutil.copytree(DKS_DIR, tmp_path / "app")
    data = dks_data()
    data["cluster"]["max_size"] = 1
    (tmp_path / "app" / "my-app.yaml").write_text(yaml.safe_dump(data))
    result = subprocess.run([sys.executable, "-m", "templates_src", "build", "--config", "my-app.yaml",
                             "--out", str(tmp_path / "out")], cwd=tmp_path / "app", capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert " ".join(result.stderr.split()) == quoted
