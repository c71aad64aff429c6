"""When a Compose literal becomes a generated secret, every place that held it follows it or is said:
another variable with the value, a health check, a command or entrypoint, a carried file, a URL, a file
that Compose mounted from a secret; and equal values in services that never talk stay apart."""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from test_import_messages import findings, imported, service

from templates_src.compose import command as compose_command, context, explain, services as compose_services
from templates_src.app import checks, config, loading
from templates_src.stacks import services

PASSWORD = "example_123"


def written(result: context.Imported, tmp_path: Path) -> str:
    """app.yaml as the import writes it, once the build's own checks accept it."""
    data, _ = compose_command.size_cluster(result.data, tmp_path, result.file_contents)
    result.data = data
    checks.validate(config.parse(data, base_dir=tmp_path, file_contents=result.file_contents))
    return explain.to_yaml(result, "compose.yaml")


def shell(script: str, env: dict[str, str], tmp_path: Path) -> str:
    """What /bin/sh prints running `script`, with a stand-in program on PATH that prints its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for program in ("docker-entrypoint.sh", "sqlcmd", "redis-server"):
        (bin_dir / program).write_text('#!/bin/sh\nprintf "%s|" "$0" "$@"\n')
        (bin_dir / program).chmod(0o755)
    run = subprocess.run(["/bin/sh", "-c", script], env={"PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
                         capture_output=True, text=True, check=True)
    return run.stdout


# --- another variable with the same value -----------------------------------------------------------------


def test_the_same_value_under_any_name_becomes_the_same_secret(tmp_path):
    # MinIO's root password is langfuse's S3 key; here under a name that does not look secret at all.
    result = imported({"minio": {"image": "minio/minio", "environment": {"MINIO_ROOT_PASSWORD": "miniosecret"}},
                       "web": {"image": "acme/web", "environment": {"S3_ENDPOINT": "http://minio:9000",
                                                                    "STORAGE_SIGNATURE": "miniosecret"}}}, tmp_path)
    secret = service(result, "minio")["secrets"]["MINIO_ROOT_PASSWORD"]
    assert service(result, "web")["secrets"] == {"STORAGE_SIGNATURE": secret}
    assert "same value as a secret" in findings(result.notes, "web", "environment.STORAGE_SIGNATURE")
    assert "miniosecret" not in written(result, tmp_path)


def test_a_short_value_that_is_also_a_name_does_not_pull_other_variables_in(tmp_path):
    result = imported({"db": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "postgres",
                                                                      "POSTGRES_USER": "postgres",
                                                                      "POSTGRES_DB": "postgres"}}}, tmp_path)
    db = service(result, "db")
    assert set(db["secrets"]) == {"POSTGRES_PASSWORD"}
    assert db["environment"]["POSTGRES_USER"] == "postgres" and db["environment"]["POSTGRES_DB"] == "postgres"


# --- health checks, commands, entrypoints ---------------------------------------------------------------------


def test_a_health_check_in_exec_form_reads_the_secret_through_the_shell(tmp_path):
    # aspnet-mssql's shape: the password in a CMD exec form, one argument quoted because it holds a space.
    check = ["CMD", "sqlcmd", "-U", "sa", "-P", PASSWORD, "-Q", "SELECT 1"]
    result = imported({"db": {"image": "mcr.microsoft.com/mssql/server", "environment": {"SA_PASSWORD": PASSWORD},
                              "healthcheck": {"test": check}}}, tmp_path)
    command = service(result, "db")["health_check"]["command"]
    assert PASSWORD not in command and "${SA_PASSWORD}" in command
    printed = shell(command, {"SA_PASSWORD": "Generated 1"}, tmp_path)
    assert printed.endswith("sqlcmd|-U|sa|-P|Generated 1|-Q|SELECT 1|")


def test_a_secret_inside_single_quotes_of_a_shell_check_is_still_expanded(tmp_path):
    test = f"sqlcmd -P '{PASSWORD}' -Q \"pw={PASSWORD}\" || exit 1"
    result = imported({"db": {"image": "acme/db", "environment": {"DB_PASSWORD": PASSWORD},
                              "healthcheck": {"test": ["CMD-SHELL", test]}}}, tmp_path)
    command = service(result, "db")["health_check"]["command"]
    assert PASSWORD not in command
    assert shell(command, {"DB_PASSWORD": "g3n"}, tmp_path).endswith("sqlcmd|-P|g3n|-Q|pw=g3n|")


def test_a_word_of_letters_follows_in_a_check_when_long_enough_and_is_said_when_short(tmp_path):
    result = imported({
        "cache": {"image": "acme/cache", "environment": {"CACHE_PASSWORD": "cachepass"},
                  "healthcheck": {"test": "cache-cli -a cachepass ping"}},
        "db": {"image": "acme/db", "environment": {"DB_PASSWORD": "hunter"},
               "healthcheck": {"test": "check -p hunter"}},
        "pg": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "postgres"},
               "healthcheck": {"test": "pg_isready -U postgres"}},
    }, tmp_path)
    assert service(result, "cache")["health_check"]["command"] == 'cache-cli -a "${CACHE_PASSWORD}" ping'
    assert service(result, "db")["health_check"]["command"] == "check -p hunter"
    assert "too short" in findings(result.warnings, "db", "healthcheck.test")
    # "postgres" is the image's name, the user's too: no word in the check is taken for the password.
    assert service(result, "pg")["health_check"]["command"] == "pg_isready -U postgres"
    assert not findings(result.warnings, "pg", "healthcheck.test")


def test_a_command_holding_a_secret_runs_through_a_shell_that_reads_it(tmp_path):
    # langfuse's redis: the password in `command`; the image's entrypoint is known, so the program is too.
    result = imported({"redis": {"image": "redis:7", "command": ["--requirepass", "myredissecret"]},
                       "web": {"image": "acme/web", "depends_on": ["redis"],
                               "environment": {"REDIS_AUTH": "myredissecret"}}}, tmp_path)
    redis = service(result, "redis")
    assert redis["secrets"] == {"REDIS_AUTH": service(result, "web")["secrets"]["REDIS_AUTH"]}
    assert redis["entrypoint"][:2] == ["/bin/sh", "-c"] and "command" not in redis
    printed = shell(redis["entrypoint"][2], {"REDIS_AUTH": "g3n erated"}, tmp_path)
    assert printed.endswith("docker-entrypoint.sh|--requirepass|g3n erated|")
    assert "myredissecret" not in written(result, tmp_path)


def test_a_command_of_an_unknown_image_names_the_variable_and_says_so(tmp_path):
    result = imported({"worker": {"image": "acme/worker", "command": ["run", f"--password={PASSWORD}"],
                                  "environment": {"WORKER_PASSWORD": PASSWORD}}}, tmp_path)
    worker = service(result, "worker")
    assert worker["command"] == ["run", "--password=${WORKER_PASSWORD}"]
    assert "without a shell" in findings(result.warnings, "worker", "command")
    assert PASSWORD not in written(result, tmp_path)


def test_a_url_password_in_a_health_check_follows_the_url_secret(tmp_path):
    url = "postgres://app:Pw-12345678@localhost/app"
    result = imported({"db": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "Pw-12345678"},
                              "healthcheck": {"test": ["CMD", "pg_isready", "-d", url]}},
                       "api": {"image": "acme/api", "depends_on": ["db"],
                               "environment": {"DATABASE_URL": "postgres://app:Pw-12345678@db/app"}}}, tmp_path)
    api, db = service(result, "api"), service(result, "db")
    assert api["secrets"]["DATABASE_URL_PASSWORD"] == db["secrets"]["POSTGRES_PASSWORD"]
    command = db["health_check"]["command"]
    assert "Pw-12345678" not in command
    assert "pg_isready|-d|postgres://app:s3@localhost/app|" in shell(command.replace("pg_isready", "printf '%s|'"
                                                                                      " pg_isready"),
                                                                      {"POSTGRES_PASSWORD": "s3"}, tmp_path)


# --- carried files ------------------------------------------------------------------------------------------


def test_a_carried_file_holding_a_secret_is_not_carried_and_said(tmp_path):
    (tmp_path / "nginx.conf").write_text(f"auth_basic_user_file x; # {PASSWORD}\n")
    (tmp_path / "other.conf").write_text("events {}\n")
    result = imported({"web": {"image": "nginx:1.27", "environment": {"ADMIN_PASSWORD": PASSWORD},
                               "volumes": ["./nginx.conf:/etc/nginx/nginx.conf", "./other.conf:/etc/nginx/o.conf"]}},
                      tmp_path)
    web = service(result, "web")
    assert web["files"] == {"/etc/nginx/o.conf": "other.conf"}
    assert "not carried over" in findings(result.warnings, "web", "files./etc/nginx/nginx.conf")
    assert set(result.file_contents) == {"other.conf"}
    assert PASSWORD not in written(result, tmp_path)


# --- files Compose mounted from a secret ----------------------------------------------------------------------


def test_a_variable_naming_a_secret_file_keeps_pointing_at_a_file_with_that_secret(tmp_path):
    # nginx-flask-mysql's shape: MYSQL_ROOT_PASSWORD_FILE, and a variable without _FILE holding the path.
    result = imported({"db": {"image": "mariadb:10", "secrets": ["db-password"],
                              "environment": {"MYSQL_ROOT_PASSWORD_FILE": "/run/secrets/db-password",
                                              "MARIADB_PASSWORD": "/run/secrets/db-password"}}},
                      tmp_path, secrets={"db-password": {"file": "db/password.txt"}})
    db = service(result, "db")
    assert db["secret_files"] == {"/run/secrets/db-password": "db-password"}
    assert db["environment"]["MARIADB_PASSWORD"] == "/run/secrets/db-password"
    assert db["environment"]["MYSQL_ROOT_PASSWORD_FILE"] == "/run/secrets/db-password"
    assert set(result.data["secrets"]) == {"db-password"}  # no unrelated secret for the path
    assert db["entrypoint"] == ["docker-entrypoint.sh"]
    written(result, tmp_path)


def test_the_wrapper_writes_a_secret_file_readable_by_all_and_takes_the_value_out_of_the_environment(tmp_path):
    target = tmp_path / "run" / "secrets" / "db-password"
    svc = config.Service(name="db", port=3306, cpu=256, memory=512, entrypoint=("env",),
                         secret_files={str(target): "db-password"})
    entrypoint, command = services.launcher(svc)
    variable = services.secret_file_variable(str(target))
    run = subprocess.run([*entrypoint, *command], env={"PATH": os.environ["PATH"], variable: "g3n"},
                         capture_output=True, text=True, check=True)
    assert target.read_text() == "g3n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert variable not in run.stdout and "g3n" not in run.stdout


def test_the_task_definition_gives_the_wrapper_the_secret(tmp_path):
    result = imported({"db": {"image": "postgres:16", "secrets": ["db_pw"],
                              "environment": {"POSTGRES_PASSWORD_FILE": "/run/secrets/db_pw"}}},
                      tmp_path, secrets={"db_pw": {"file": "pw.txt"}})
    (tmp_path / "app.yaml").write_text(written(result, tmp_path))
    from templates_src import render

    app = loading.load(tmp_path / "app.yaml")
    stacks = render.stacks(app)
    definitions = [r for t in stacks.values() for r in t.get("Resources", {}).values()
                   if r["Type"] == "AWS::ECS::TaskDefinition"]
    [container] = definitions[0]["Properties"]["ContainerDefinitions"]
    assert [s["Name"] for s in container["Secrets"]] == [services.secret_file_variable("/run/secrets/db_pw")]
    assert "/run/secrets/db_pw" in container["EntryPoint"][2]


def test_without_a_program_to_hand_over_to_the_secret_comes_as_a_variable(tmp_path):
    result = imported({"app": {"build": ".", "secrets": ["api_token"],
                               "environment": {"TOKEN_PATH": "/run/secrets/api_token"}}},
                      tmp_path, secrets={"api_token": {"environment": "TOKEN"}})
    app = service(result, "app")
    assert app["secrets"] == {"API_TOKEN": "api-token"} and "secret_files" not in app
    assert "not written" in findings(result.warnings, "app", "environment.TOKEN_PATH")
    written(result, tmp_path)


# --- equal by coincidence ---------------------------------------------------------------------------------------


def test_equal_passwords_of_services_that_never_talk_are_separate_secrets(tmp_path):
    result = imported({
        "grafana": {"image": "grafana/grafana", "ports": ["3000:3000"],
                    "environment": {"GF_SECURITY_ADMIN_PASSWORD": "same-pass-1"}},
        "db": {"image": "postgres:16", "environment": {"POSTGRES_PASSWORD": "same-pass-1"}},
        "api": {"image": "acme/api", "depends_on": ["db"], "environment": {"DB_PASSWORD": "same-pass-1"}},
    }, tmp_path)
    admin = service(result, "grafana")["secrets"]["GF_SECURITY_ADMIN_PASSWORD"]
    superuser = service(result, "db")["secrets"]["POSTGRES_PASSWORD"]
    assert admin != superuser
    assert service(result, "api")["secrets"]["DB_PASSWORD"] == superuser  # api talks to db: one credential
    said = findings(result.warnings, "grafana", "environment.GF_SECURITY_ADMIN_PASSWORD")
    assert "db.POSTGRES_PASSWORD" in said and "do not connect" in said
    assert "same-pass-1" not in written(result, tmp_path)


# --- on the emulator --------------------------------------------------------------------------------------------


def test_a_compose_secret_file_deploys_with_the_secret_given_to_the_wrapper(aws, tmp_path):
    import stacks
    from helpers import write_build

    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "password.txt").write_text("unused\n")
    result = compose_services.convert({"name": "secretfile", "services": {
        "db": {"image": "mariadb:10", "secrets": ["db-password"],
               "environment": {"MARIADB_ROOT_PASSWORD_FILE": "/run/secrets/db-password"},
               "healthcheck": {"test": ["CMD-SHELL", "mariadb-admin ping -p\"$(cat /run/secrets/db-password)\""]}}},
        "secrets": {"db-password": {"file": "db/password.txt"}}}, tmp_path, tmp_path, {})
    (tmp_path / "app.yaml").write_text(written(result, tmp_path))
    build = write_build(loading.load(tmp_path / "app.yaml"), tmp_path / "build")
    stacks.upload(aws, "secretfile-templates", "t/", build)
    url = stacks.template_url(aws, "secretfile-templates", "t/")
    registry = stacks.create(aws, "secretfile-registry", url + "registry.yaml")
    assert registry["StackStatus"] == "CREATE_COMPLETE", registry.get("StackStatusReason")
    root = stacks.create(aws, "secretfile", url + "main.yaml", {"QSS3BucketName": "secretfile-templates",
                                                                 "QSS3KeyPrefix": "t/"})
    assert root["StackStatus"] == "CREATE_COMPLETE", root.get("StackStatusReason")
    ecs = aws.client("ecs")
    arns = ecs.list_task_definitions()["taskDefinitionArns"]
    [container] = ecs.describe_task_definition(taskDefinition=arns[0])["taskDefinition"]["containerDefinitions"]
    variable = services.secret_file_variable("/run/secrets/db-password")
    [given] = container["secrets"]
    assert given["name"] == variable and ":secret:" in given["valueFrom"]
    assert '> /run/secrets/db-password' in container["entryPoint"][2]
    assert {"name": "MARIADB_ROOT_PASSWORD_FILE", "value": "/run/secrets/db-password"} in container["environment"]
    stacks.delete(aws, "secretfile")
    stacks.delete(aws, "secretfile-registry")


def test_the_same_variable_in_services_that_do_not_talk_is_one_setting(tmp_path):
    # taiga's shape: the back end and its async worker both sign with SECRET_KEY, and talk only to the database.
    result = imported({
        "db": {"image": "postgres:16"},
        "back": {"image": "taiga/back", "depends_on": ["db"], "environment": {"SECRET_KEY": "k3y-0f-the-app"}},
        "async": {"image": "taiga/back", "depends_on": ["db"], "environment": {"SECRET_KEY": "k3y-0f-the-app"}},
    }, tmp_path)
    assert service(result, "back")["secrets"] == service(result, "async")["secrets"] == {"SECRET_KEY": "secret-key"}


def test_equal_keys_are_one_secret_even_between_services_that_do_not_talk(tmp_path):
    # taiga-protected's SECRET_KEY must be taiga-back's TAIGA_SECRET_KEY; nobody picks a key twice by chance.
    result = imported({
        "back": {"image": "taiga/back", "environment": {"TAIGA_SECRET_KEY": "k3y-0f-the-app"}},
        "protected": {"image": "taiga/protected", "environment": {"SECRET_KEY": "k3y-0f-the-app"}},
    }, tmp_path)
    assert service(result, "protected")["secrets"]["SECRET_KEY"] == service(result, "back")["secrets"][
        "TAIGA_SECRET_KEY"]


def test_bad_secret_files_are_refused_with_the_field():
    import pytest
    from helpers import dks_data

    data = dks_data()
    index, db = next((i, s) for i, s in enumerate(data["services"]) if s["name"] == "dks-db")
    secret = next(iter(data["secrets"]))
    written_file = next(iter(db["files"]))
    db["secret_files"] = {"run/x": secret, "/run/y": "nope", written_file: secret}
    with pytest.raises(config.ConfigError) as refused:
        checks.validate(config.parse(data, base_dir=config.DEFAULT_CONFIG.parent))
    problems = {where: reason for where, reason in refused.value.problems}
    at = f"services[{index}].secret_files."
    assert "absolute" in problems[at + "run/x"]
    assert "unknown secret" in problems[at + "/run/y"]
    assert "also under files" in problems[at + written_file]
