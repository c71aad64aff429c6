"""Docker Hub images run from a copy in the app's ECR: which references count, the repositories, the image names.

The rules are Docker's (distribution/reference): no registry host, docker.io or index.docker.io
(and Docker Hub's registry host, registry-1.docker.io) is Docker Hub; a single name is an
official image, library/<name>. Everything else is used as written.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json

import pytest
from helpers import app_from, dks_data, resources, service, templates
from templates_src.compose import command, services
from templates_src.app import checks, config, mirror

DIGEST = hashlib.sha256(b"an image").hexdigest()
REGISTRY = "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${EnvironmentName}/"


def props(resource: dict) -> dict:
    return resource.get("Properties", {})


def images(tpls: dict) -> dict[str, object]:
    """Service name -> the Image of its container."""
    found = {}
    for file, template in tpls.items():
        for task in resources(template, "AWS::ECS::TaskDefinition").values():
            (container,) = props(task)["ContainerDefinitions"]
            found[container["Name"]] = container["Image"]
    return found


def repository_names(tpls: dict) -> list[str]:
    registry = tpls.get("registry.yaml", {"Resources": {}})
    return sorted(props(r)["RepositoryName"]["Fn::Sub"].removeprefix("${EnvironmentName}/")
                  for r in resources(registry, "AWS::ECR::Repository").values())


def with_images(*pairs: tuple[str, str]) -> dict:
    """The DKS config with more services, each running one of these images (a roomier host type)."""
    data = dks_data()
    data["cluster"]["instance_type"] = "m5.4xlarge"
    for name, image in pairs:
        data["services"].append({"name": name, "image": image, "port": 9000, "cpu": 128, "memory": 128})
    return data


# --- which references are Docker Hub's ----------------------------------------------------------


@pytest.mark.parametrize("image, path, tag", [
    ("postgres:16.4-alpine", "library/postgres", "16.4-alpine-amd64"),
    ("postgres", "library/postgres", "latest-amd64"),
    ("docker.io/postgres:16", "library/postgres", "16-amd64"),
    ("docker.io/library/postgres:16", "library/postgres", "16-amd64"),
    ("index.docker.io/library/postgres:16", "library/postgres", "16-amd64"),
    ("registry-1.docker.io/library/postgres:16", "library/postgres", "16-amd64"),
    ("bitnami/redis:7.4", "bitnami/redis", "7.4-amd64"),
    (f"postgres@sha256:{DIGEST}", "library/postgres", f"sha256-{DIGEST}-amd64"),
    (f"postgres:16@sha256:{DIGEST}", "library/postgres", f"sha256-{DIGEST}-amd64"),
])
def test_a_docker_hub_image_is_copied_under_its_path_with_a_tag_naming_it_and_the_platform(dks, image, path, tag):
    copy = mirror.copy_of(dks, image)
    assert (copy.source, copy.repository, copy.tag) == (image, f"mirror/{path}", tag)


@pytest.mark.parametrize("image", [
    "public.ecr.aws/docker/library/postgres:16.4-alpine", "ghcr.io/liatrio/dks-api:1.0", "quay.io/prometheus/node",
    "localhost/app:1", "localhost:5000/app", "registry.example.com:5000/team/app:2",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1", "Registry/app:1",
])
def test_an_image_from_any_other_registry_is_used_as_written(dks, image):
    assert mirror.parse(image) is not None and mirror.copy_of(dks, image) is None
    data = with_images(("other", image))
    tpls = templates(app_from(data))
    assert images(tpls)["other"] == image
    assert repository_names(tpls) == ["dks-api", "dks-ui", "mirror/library/postgres"]


def test_a_digest_pinned_copy_is_tagged_from_the_digest_docker_keeps():
    copy = mirror.Copy(f"docker.io/library/postgres:16@sha256:{DIGEST}", "mirror/library/postgres", "t")
    # Docker drops the tag of a tag@digest reference: the pulled image is known by its digest.
    assert copy.local == f"docker.io/library/postgres@sha256:{DIGEST}"
    assert mirror.Copy("localhost:5000/app:1", "x", "t").local == "localhost:5000/app:1"


def test_the_copy_follows_the_hosts_architecture():
    data = dks_data()
    data["cluster"]["instance_type"] = "t4g.medium"
    tpls = templates(app_from(data))
    assert images(tpls)["dks-db"] == {"Fn::Sub": REGISTRY + "mirror/library/postgres:16.4-alpine-arm64"}


# --- the templates ------------------------------------------------------------------------------


def test_the_database_runs_the_copy_and_its_repository_is_kept_like_the_apps_own(dks_templates):
    registry = dks_templates["registry.yaml"]
    assert images(dks_templates)["dks-db"] == {"Fn::Sub": REGISTRY + "mirror/library/postgres:16.4-alpine-amd64"}
    copied = props(registry["Resources"]["MirrorLibraryPostgresRepository"])
    built = props(registry["Resources"]["DksApiRepository"])
    assert copied["RepositoryName"] == {"Fn::Sub": "${EnvironmentName}/mirror/library/postgres"}
    same = ("ImageScanningConfiguration", "ImageTagMutability", "EmptyOnDelete", "EncryptionConfiguration",
            "LifecyclePolicy")
    assert {k: copied[k] for k in same} == {k: built[k] for k in same}
    assert copied["ImageTagMutability"] == {"Ref": "ImageTagMutability"}
    output = registry["Outputs"]["MirrorLibraryPostgresRepositoryUri"]
    assert output["Value"] == {"Fn::GetAtt": ["MirrorLibraryPostgresRepository", "RepositoryUri"]}


def test_no_task_pulls_from_docker_hub(dks_templates):
    for name, image in images(dks_templates).items():
        assert isinstance(image, dict) and image["Fn::Sub"].startswith(REGISTRY), name


def test_the_execution_role_may_pull_every_repository_of_the_registry(dks_templates):
    (pull,) = [s for s in dks_templates["iam.yaml"]["Resources"]["ExecutionRole"]["Properties"]["Policies"][0][
        "PolicyDocument"]["Statement"] if s.get("Sid") == "PullOwnImages"]
    assert "ecr:BatchGetImage" in pull["Action"] and "ecr:GetDownloadUrlForLayer" in pull["Action"]
    patterns = [r["Fn::Sub"].replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "us-east-1")
                .replace("${AWS::AccountId}", "123456789012").replace("${EnvironmentName}", "dks")
                for r in pull["Resource"]]
    repositories = [props(r)["RepositoryName"]["Fn::Sub"].replace("${EnvironmentName}", "dks")
                    for r in resources(dks_templates["registry.yaml"], "AWS::ECR::Repository").values()]
    assert "dks/mirror/library/postgres" in repositories
    for name in repositories:
        arn = f"arn:aws:ecr:us-east-1:123456789012:repository/{name}"
        assert any(fnmatch.fnmatchcase(arn, p) for p in patterns), arn
    assert not any(fnmatch.fnmatchcase("arn:aws:ecr:us-east-1:123456789012:repository/dks2/mirror/library/postgres",
                                       p) for p in patterns), "another deployment's copies are not this one's"


def test_services_on_one_docker_hub_image_share_one_repository_and_tags_of_it_too():
    data = with_images(("cache", "redis:7.4-alpine"), ("cache-twin", "docker.io/library/redis:7.4-alpine"),
                       ("cache-old", "redis:7.2-alpine"))
    app = app_from(data)
    tpls = templates(app)
    assert repository_names(tpls) == ["dks-api", "dks-ui", "mirror/library/postgres", "mirror/library/redis"]
    shown = images(tpls)
    redis = REGISTRY + "mirror/library/redis:"
    assert shown["cache"] == shown["cache-twin"] == {"Fn::Sub": redis + "7.4-alpine-amd64"}
    assert shown["cache-old"] == {"Fn::Sub": redis + "7.2-alpine-amd64"}
    assert [(c.source, c.tag) for c in mirror.copies(app)] == [
        ("postgres:16.4-alpine", "16.4-alpine-amd64"), ("redis:7.4-alpine", "7.4-alpine-amd64"),
        ("redis:7.2-alpine", "7.2-alpine-amd64")], "each copy made once"


def test_an_app_whose_only_repositories_are_copies_has_a_registry_and_no_image_tag():
    data = dks_data()
    for svc in data["services"]:
        if svc.pop("repository", None):
            svc["image"] = f"ghcr.io/liatrio/{svc['name']}:1.0"
    tpls = templates(app_from(data))
    assert repository_names(tpls) == ["mirror/library/postgres"]
    assert not [t for t in tpls.values() if "ImageTag" in t.get("Parameters", {})]


def test_a_compose_image_from_docker_hub_is_copied_like_any_other(tmp_path):
    imported = services.convert({"services": {
        "db": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "x"}},
        "web": {"image": "ghcr.io/acme/web:2", "ports": ["80:8000"], "depends_on": ["db"]},
    }}, tmp_path, tmp_path, {})
    data, _ = command.size_cluster(imported.data, tmp_path)
    app = config.parse(data, base_dir=tmp_path)
    checks.validate(app)
    tpls = templates(app)
    assert repository_names(tpls) == ["mirror/library/postgres"]
    assert images(tpls) == {"db": {"Fn::Sub": REGISTRY + "mirror/library/postgres:16-amd64"},
                            "web": "ghcr.io/acme/web:2"}


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("image, reason", [
    ("Postgres:16", "not an image reference Docker accepts"),
    ("postgres:", "not an image reference Docker accepts"),
    ("postgres:16 ", "not an image reference Docker accepts"),
    ("postgres@sha256:abc", "not an image reference Docker accepts"),
    (f"postgres@sha512:{DIGEST}{DIGEST}", "not an image reference Docker accepts"),
    ("acme/my__app:1", "ECR repository names allow only one"),
    ("postgres:" + "t" * 124, "longer than the 128 characters Docker allows"),
    ("library/" + "a" * 240 + ":1", "ECR repository name is up to"),
    ("library/" + "a" * 150 + ":" + "t" * 100, "image name is up to"),  # ECS takes 255 characters
])
def test_an_image_the_copy_cannot_be_made_of_is_refused_at_its_field(image, reason):
    data = dks_data()
    service(data, "dks-db")["image"] = image
    with pytest.raises(config.ConfigError) as refused:
        app_from(data)
    (problem,) = refused.value.problems
    assert problem[0] == "services[0].image" and reason in problem[1], problem


def test_a_copy_whose_resource_names_are_taken_is_refused():
    data = dks_data()
    service(data, "dks-api")["repository"] = "mirror-library-postgres"
    with pytest.raises(config.ConfigError) as refused:
        app_from(data)
    (problem,) = refused.value.problems
    assert problem[0] == "services[0].image" and "(MirrorLibraryPostgres)" in problem[1]


def test_two_references_that_would_share_one_copy_are_refused():
    data = with_images(("a", f"acme/app@sha256:{DIGEST}"), ("b", f"acme/app:sha256-{DIGEST}"))
    with pytest.raises(config.ConfigError) as refused:
        app_from(data)
    assert [p[0] for p in refused.value.problems] == ["services[4].image"]
    assert "would share the copy" in json.dumps(refused.value.problems)
