"""HTTPS on the user's own domain: the templates, the emulator's deploy, and make deploy / diff / cleanup.

DomainName with HostedZoneId makes a DNS-validated certificate and an alias record; CertificateArn
brings a certificate made elsewhere for DomainName. HTTPS is on exactly when there is a certificate,
every URL is on DomainName then, and the root's Rules refuse the combinations that leave a certificate
without its name or a name without a certificate.
"""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

import inventory
import stacks
import test_emulated_deploy as emulated
from emulator import rules
from helpers import ROOT, app_from, dks_data, resources, templates
from test_templates import no_public_service

sys.path.insert(0, str(ROOT / "scripts"))
from lifecycle import images  # noqa: E402
from lifecycle import rules as early  # noqa: E402

DOMAIN = "dks.example.com"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0d2f4f6e-1111-2222-3333-444455556666"
ALB = "<the load balancer's DNS name>"
NEEDS_DOMAIN = {"CertificateArn": "CertificateArn needs DomainName", "HostedZoneId": "HostedZoneId needs DomainName"}
NEEDS_CERTIFICATE = "DomainName needs HostedZoneId (a certificate is made and validated in that Route 53 zone) or " \
                    "CertificateArn (a certificate made elsewhere for DomainName)"


def combination(domain: bool, zone: bool, certificate: bool, zone_id: str = "Z0123456789ABCDEFGHIJ") -> dict:
    return {"DomainName": DOMAIN if domain else "", "HostedZoneId": zone_id if zone else "",
            "CertificateArn": CERTIFICATE if certificate else ""}


COMBINATIONS = [combination(*flags) for flags in itertools.product((False, True), repeat=3)]
# What the Rules refuse, and with which rule's words (the first rule that fails speaks).
REFUSED = {
    ("", "", CERTIFICATE): NEEDS_DOMAIN["CertificateArn"],
    ("", "Z0123456789ABCDEFGHIJ", ""): NEEDS_DOMAIN["HostedZoneId"],
    ("", "Z0123456789ABCDEFGHIJ", CERTIFICATE): NEEDS_DOMAIN["CertificateArn"],
    (DOMAIN, "", ""): NEEDS_CERTIFICATE,
}


def key(values: dict) -> tuple:
    return values["DomainName"], values["HostedZoneId"], values["CertificateArn"]


# --- the templates, evaluated for every combination --------------------------------------------

def holds(template: dict, condition: str, values: dict) -> bool:
    return _evaluate(template["Conditions"][condition], template, values)


def _evaluate(expression, template: dict, values: dict):
    """Just enough of CloudFormation to read our templates: conditions, Ref, If, GetAtt, Sub."""
    if not isinstance(expression, dict):
        return expression
    ((function, argument),) = expression.items()
    if function == "Ref":
        return values.get(argument, f"<{argument}>")
    if function == "Condition":
        return holds(template, argument, values)
    if function == "Fn::GetAtt":
        return ALB if argument[1] == "DNSName" else f"<{'.'.join(argument)}>"
    if function == "Fn::If":
        return _evaluate(argument[1] if holds(template, argument[0], values) else argument[2], template, values)
    if function == "Fn::Sub":
        text, names = (argument, {}) if isinstance(argument, str) else argument
        names = {**values, **{k: _evaluate(v, template, values) for k, v in names.items()}}
        for name, value in names.items():
            text = text.replace("${" + name + "}", str(value))
        return text
    logic = {"Fn::Equals": lambda a: a[0] == a[1], "Fn::Not": lambda a: not a[0], "Fn::And": all, "Fn::Or": any}
    if function in logic:
        return logic[function]([_evaluate(item, template, values) for item in argument])
    raise AssertionError(f"not evaluated here: {function}")


def root_values(dks_templates: dict, values: dict) -> dict:
    """The root's outputs for these parameters, each child's outputs evaluated where it makes them."""
    lb = dks_templates["loadbalancer.yaml"]
    published = {name: _evaluate(lb["Outputs"][name]["Value"], lb, values) for name in ("PublicHost", "UrlScheme")}
    main = dks_templates["main.yaml"]
    found = {}
    for name, output in main["Outputs"].items():
        value = output["Value"]
        if "Fn::Sub" in value:
            text, names = value["Fn::Sub"]
            assert all(v["Fn::GetAtt"][0] == "LoadbalancerStack" for v in names.values())
            found[name] = _evaluate({"Fn::Sub": [text, {}]}, main, published)
    return found


@pytest.mark.parametrize("values", COMBINATIONS, ids=lambda v: "+".join(k for k, x in v.items() if x) or "none")
def test_https_exactly_with_a_certificate_and_every_url_on_the_domain(dks_templates, values):
    main, lb, network = (dks_templates[f] for f in ("main.yaml", "loadbalancer.yaml", "network.yaml"))
    refusal = rules.failing(main, rules.parameter_values(main, values, resolve_ssm=str))
    assert refusal == early.refusal(main, values), "the lifecycle's early check agrees with the emulator's"
    if refusal:  # nothing below is ever deployed: CloudFormation refuses it first
        assert refusal.startswith(REFUSED[key(values)])
        return
    assert key(values) not in REFUSED
    certificate = bool(values["CertificateArn"]) or bool(values["DomainName"] and values["HostedZoneId"])
    assert holds(lb, "Https", values) is holds(network, "Https", values) is certificate
    assert holds(lb, "CertificateMade", values) is bool(values["HostedZoneId"] and not values["CertificateArn"])
    assert holds(lb, "HostedZone", values) is bool(values["HostedZoneId"])  # the alias record's condition

    urls = root_values(dks_templates, values)
    scheme, host = ("https", DOMAIN) if values["DomainName"] else ("http", ALB)
    assert urls == {"AppUrl": f"{scheme}://{host}", "ApiUrl": f"{scheme}://{host}:8080"}
    ui_api = {e["Name"]: e["Value"] for e in container_environment(dks_templates, "dks-ui")}["KNOWLEDGE_SHARE_API"]
    assert _evaluate(ui_api, main, {"UrlScheme": scheme, "PublicHost": host}) == urls["ApiUrl"]
    # every listener but the redirect serves the certificate there is: the one made, or the one given
    https = [listener for listener in resources(lb, "AWS::ElasticLoadBalancingV2::Listener").values()
             if "Certificates" in listener["Properties"]]
    assert len(https) == 2
    for listener in https:
        served = _evaluate(listener["Properties"]["Certificates"], lb, values)
        if certificate:
            assert isinstance(served, list) and len(served) == 1
            assert _evaluate(served[0]["CertificateArn"], lb, values) == (values["CertificateArn"] or "<Certificate>")


def container_environment(tpls: dict, name: str) -> list[dict]:
    for resource in resources(tpls["services.yaml"], "AWS::ECS::TaskDefinition").values():
        for container in resource["Properties"]["ContainerDefinitions"]:
            if container["Name"] == name:
                return container["Environment"]
    raise AssertionError(name)


def test_the_certificate_is_made_for_the_domain_and_validated_in_its_zone(dks_templates):
    lb = dks_templates["loadbalancer.yaml"]
    (certificate,) = resources(lb, "AWS::CertificateManager::Certificate").values()
    assert certificate["Condition"] == "CertificateMade"
    assert lb["Conditions"]["CertificateMade"] == {"Fn::And": [
        {"Fn::Equals": [{"Ref": "CertificateArn"}, ""]},
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]},
        {"Fn::Not": [{"Fn::Equals": [{"Ref": "HostedZoneId"}, ""]}]}]}
    props = certificate["Properties"]
    assert props["DomainName"] == {"Ref": "DomainName"} and props["ValidationMethod"] == "DNS"
    # HostedZoneId in the validation options: CloudFormation writes the CNAME ACM asks for
    assert props["DomainValidationOptions"] == [{"DomainName": {"Ref": "DomainName"},
                                                 "HostedZoneId": {"Ref": "HostedZoneId"}}]
    assert "SubjectAlternativeNames" not in props


def test_the_zone_gets_an_alias_record_from_the_domain_to_the_load_balancer(dks_templates):
    lb = dks_templates["loadbalancer.yaml"]
    (record,) = resources(lb, "AWS::Route53::RecordSet").values()
    assert record["Condition"] == "HostedZone"
    assert lb["Conditions"]["HostedZone"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "HostedZoneId"}, ""]}]}
    assert record["Properties"] == {
        "HostedZoneId": {"Ref": "HostedZoneId"}, "Name": {"Ref": "DomainName"}, "Type": "A",
        "AliasTarget": {"DNSName": {"Fn::GetAtt": ["LoadBalancer", "DNSName"]},
                        "HostedZoneId": {"Fn::GetAtt": ["LoadBalancer", "CanonicalHostedZoneID"]},
                        "EvaluateTargetHealth": False}}


def test_the_rules_refuse_each_inconsistent_combination_in_words_naming_the_parameter(dks_templates):
    main = dks_templates["main.yaml"]
    assert list(main)[list(main).index("Parameters") + 1] == "Rules", "Rules follow Parameters"
    # the sizes' and the kept data's rules have their own tests (test_size_rules.py, test_kept_data_templates.py)
    written = {name: rule for name, rule in main["Rules"].items() if "Size" not in name and not name.startswith("Kept")}
    assert list(written) == ["CertificateNeedsDomain", "ZoneNeedsDomain", "DomainNeedsCertificate"]
    for name, parameter in (("CertificateNeedsDomain", "CertificateArn"), ("ZoneNeedsDomain", "HostedZoneId"),
                            ("DomainNeedsCertificate", "DomainName")):
        rule = written[name]
        # the rule applies when its parameter is given, and its one sentence starts with that parameter
        assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
        (assertion,) = rule["Assertions"]
        assert assertion["AssertDescription"].startswith(f"{parameter} needs ")
        assert assertion["AssertDescription"].count(". ") == 0
    parameters = main["Parameters"]
    for name in ("DomainName", "HostedZoneId", "CertificateArn"):
        assert parameters[name]["Default"] == ""
    assert parameters["DomainName"]["MaxLength"] == 64  # ACM's limit for a certificate's first name


def test_an_app_without_a_load_balancer_has_no_domain_parameters_and_no_rules():
    main = templates(app_from(no_public_service()))["main.yaml"]
    assert not {"DomainName", "HostedZoneId", "CertificateArn"} & set(main["Parameters"])
    assert [name for name in main["Rules"] if "Domain" in name or "Certificate" in name] == []
    assert "LoadBalancerDnsName" not in main["Outputs"]


# --- the emulator ------------------------------------------------------------------------------------

def public_zone(session: boto3.Session, name: str = "example.com") -> str:
    created = session.client("route53").create_hosted_zone(Name=name, CallerReference=name)["HostedZone"]
    return created["Id"].rsplit("/", 1)[-1]


def left_in_zone(difference: dict, zone: str) -> list[str]:
    """What the deployment left, which must be the validation CNAME in the user's zone and nothing else."""
    assert set(difference) == {"route53 records"} and difference["route53 records"]["gone"] == []
    left = difference["route53 records"]["left"]
    assert all(entry.startswith(f"/hostedzone/{zone} ") and entry.endswith(f".{DOMAIN}. CNAME") for entry in left)
    return left


def test_a_deploy_on_a_domain_issues_the_certificate_writes_both_records_and_serves_https(aws):
    zone = public_zone(aws)
    before = inventory.take(aws)
    deployment = emulated.deploy(aws, {"DomainName": DOMAIN, "HostedZoneId": zone})
    elsewhere = {kind for kind, test in emulated.CONDITIONAL.items() if test != "tests/stacks/test_domain.py"}
    assert {r.type for r in deployment.resources} == emulated.built_types() - elsewhere, "now the domain's are made"
    for kind in set(emulated.CONDITIONAL) - elsewhere:
        emulated.CHECKS[kind](deployment, deployment.of_type(kind))
    assert deployment.output("main.yaml", "AppUrl") == f"https://{DOMAIN}"
    assert deployment.output("main.yaml", "ApiUrl") == f"https://{DOMAIN}:8080"

    elb = aws.client("elbv2")
    (balancer,) = elb.describe_load_balancers()["LoadBalancers"]
    assert deployment.output("main.yaml", "LoadBalancerDnsName") == balancer["DNSName"]
    listeners = {item["Port"]: item for item in elb.describe_listeners(
        LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]}
    (redirect,) = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Port"] == "443"
    assert listeners[443]["Protocol"] == listeners[8080]["Protocol"] == "HTTPS"
    ecs = aws.client("ecs")
    (ui,) = ecs.describe_services(cluster=deployment.environment, services=["dks-ui"])["services"]
    (container,) = ecs.describe_task_definition(taskDefinition=ui["taskDefinition"])["taskDefinition"][
        "containerDefinitions"]
    assert {"name": "KNOWLEDGE_SHARE_API", "value": f"https://{DOMAIN}:8080"} in container["environment"]

    stacks.delete(aws, emulated.ROOT)
    stacks.delete(aws, emulated.REGISTRY)
    stacks.empty_bucket(aws, emulated.BUCKET)
    stacks.drop_retained(aws, before)
    assert aws.client("acm").list_certificates()["CertificateSummaryList"] == [], "the certificate goes with its stack"
    (left,) = left_in_zone(inventory.difference(before, inventory.take(aws)), zone)
    assert left.startswith(f"/hostedzone/{zone} _"), "the validation CNAME stays, as CloudFormation leaves it"


@pytest.mark.parametrize("refused", sorted(REFUSED), ids=lambda k: "+".join(
    name for name, value in zip(("DomainName", "HostedZoneId", "CertificateArn"), k) if value))
def test_each_inconsistent_combination_is_refused_at_create_time_and_nothing_is_made(aws, refused):
    stacks.upload(aws, emulated.BUCKET, emulated.PREFIX)
    given = {"QSS3BucketName": emulated.BUCKET, "QSS3KeyPrefix": emulated.PREFIX,
             **{k: v for k, v in zip(("DomainName", "HostedZoneId", "CertificateArn"), refused) if v}}
    before = inventory.take(aws)
    with pytest.raises(ClientError) as error:
        stacks.create(aws, emulated.ROOT, stacks.template_url(aws, emulated.BUCKET, emulated.PREFIX + "main.yaml"),
                      given)
    assert error.value.response["Error"]["Code"] == "ValidationError"
    assert error.value.response["Error"]["Message"].startswith(REFUSED[refused])
    assert inventory.difference(before, inventory.take(aws)) == {}


@pytest.mark.parametrize("zone_name, taken, failed, reason", [
    ("example.org", False, "Certificate", f"(example.org.) does not hold {DOMAIN}"),
    ("example.com", True, "DomainRecord", f"[name='{DOMAIN}.', type='A'] but it already exists"),
], ids=["outside the zone", "already taken"])
def test_a_name_the_zone_cannot_take_fails_the_stack_and_rolls_back(aws, zone_name, taken, failed, reason):
    zone = public_zone(aws, zone_name)
    route53 = aws.client("route53")
    if taken:  # somebody's record for the name: Route 53 refuses to create it again, nothing overwrites it
        existing = {"Name": DOMAIN, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}
        route53.change_resource_record_sets(
            HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": existing}]})
    before = inventory.take(aws)
    stacks.upload(aws, emulated.BUCKET, emulated.PREFIX)
    root = stacks.create(aws, emulated.ROOT, stacks.template_url(aws, emulated.BUCKET, emulated.PREFIX + "main.yaml"),
                         {"QSS3BucketName": emulated.BUCKET, "DomainName": DOMAIN, "HostedZoneId": zone})
    assert root["StackStatus"] == "ROLLBACK_COMPLETE"
    cfn = aws.client("cloudformation")
    (found,) = [e["ResourceStatusReason"] for s in cfn.list_stacks()["StackSummaries"]  # deleted nested ones too
                for e in cfn.describe_stack_events(StackName=s["StackId"])["StackEvents"]
                if e["LogicalResourceId"] == failed and e["ResourceStatus"] == "CREATE_FAILED"]
    assert reason in found
    stacks.delete(aws, emulated.ROOT)
    stacks.empty_bucket(aws, emulated.BUCKET)
    stacks.drop_retained(aws, before)
    assert aws.client("acm").list_certificates()["CertificateSummaryList"] == []
    difference = inventory.difference(before, inventory.take(aws))
    if taken:  # the certificate was made (its CNAME stays), then the record failed; the old record is intact
        left_in_zone(difference, zone)
        (record,) = [r for r in route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
                     if r["Type"] == "A"]
        assert record["ResourceRecords"] == [{"Value": "192.0.2.1"}]
    else:
        assert difference == {}


# --- make deploy / diff / cleanup --------------------------------------------------------------------

def run(command: str, **env: str) -> subprocess.CompletedProcess:
    """What `make <command>` runs (the target is this one line), as its own process."""
    done = subprocess.run([sys.executable, f"scripts/{command}.py"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "STACK": "dks", **env}, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_make_deploy_on_a_domain_then_a_refused_change_then_cleanup(aws):
    zone = public_zone(aws)
    before = inventory.take(aws)
    done = run("deploy", SKIP_IMAGES="1", PARAMS=f"DomainName={DOMAIN} HostedZoneId={zone}")
    assert done.returncode == 0, done.stdout + done.stderr
    cfn = aws.client("cloudformation")
    root = cfn.describe_stacks(StackName="dks")["Stacks"][0]
    outputs = stacks.outputs(root)
    assert (outputs["AppUrl"], outputs["ApiUrl"]) == (f"https://{DOMAIN}", f"https://{DOMAIN}:8080")
    assert f"https://{DOMAIN}:8080" in done.stdout, "the outputs are printed at the end"
    # the UI image inlines the API's URL from the root's outputs: the domain's
    app = app_from(dks_data())
    assert images.build_args(app, "dks-ui", outputs, "dks") == {"KNOWLEDGE_SHARE_API": f"https://{DOMAIN}:8080"}
    (certificate,) = aws.client("acm").list_certificates()["CertificateSummaryList"]
    assert (certificate["DomainName"], certificate["Status"]) == (DOMAIN, "ISSUED")

    # Clearing HostedZoneId keeps DomainName (a parameter not given keeps its value): no certificate left
    # for the name, so it is refused before anything changes, in the rule's words.
    cleared = run("deploy", SKIP_IMAGES="1", PARAMS="HostedZoneId=")
    assert cleared.returncode == 2, cleared.stdout + cleared.stderr
    assert cleared.stderr == f"error: PARAMS: {NEEDS_CERTIFICATE}\n"
    after = cfn.describe_stacks(StackName="dks")["Stacks"][0]
    assert (after["StackStatus"], after.get("LastUpdatedTime")) == (root["StackStatus"], root.get("LastUpdatedTime"))
    assert stacks.parameters(after)["HostedZoneId"] == zone

    (option,) = aws.client("acm").describe_certificate(CertificateArn=certificate["CertificateArn"])[
        "Certificate"]["DomainValidationOptions"]
    gone = run("cleanup", YES="1")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    (left,) = left_in_zone(inventory.difference(before, inventory.take(aws)), zone)
    # cleanup leaves the validation record (nothing marks it as this deployment's) and says so
    assert left == f"/hostedzone/{zone} {option['ResourceRecord']['Name']} CNAME"
    assert f"dns: the validation record {option['ResourceRecord']['Name']} (CNAME) of the certificate for {DOMAIN} " \
           f"stays in hosted zone {zone}" in gone.stdout


@pytest.mark.parametrize("command, params, words", [
    ("diff", f"CertificateArn={CERTIFICATE}", NEEDS_DOMAIN["CertificateArn"]),
    ("deploy", "HostedZoneId=Z0123456789ABCDEFGHIJ", NEEDS_DOMAIN["HostedZoneId"]),
    ("deploy", f"DomainName={DOMAIN}", NEEDS_CERTIFICATE),
])
def test_make_diff_and_deploy_refuse_an_inconsistent_combination_before_making_anything(aws, command, params, words):
    before = inventory.take(aws)
    done = run(command, SKIP_IMAGES="1", PARAMS=params)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: PARAMS: {words}")
    assert inventory.difference(before, inventory.take(aws)) == {}, "no bucket, no upload, no stack"
