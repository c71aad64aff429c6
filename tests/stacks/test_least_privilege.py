"""Containers run with the least they need: a read-only root file system with tmpfs where the program
writes, every Linux capability dropped but the ones named, an init process, never privileged (the
hosts refuse it too), postgres as its own user; the DB init script keeps every value off command
lines and out of SQL text, and the API's role can create neither databases nor roles."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DKS_DIR, ROOT, app_from, dks_data, resources, service, templates
from templates_src.compose import services as compose_services
from templates_src.app import checks, config, loading

INIT_SCRIPT = DKS_DIR / "db-init.sh"


def containers(rendered: dict[str, dict]) -> dict[str, dict]:
    """Service name -> its container definition, over every services stack."""
    found = {}
    for name, template in rendered.items():
        if name.startswith("services"):
            for task in resources(template, "AWS::ECS::TaskDefinition").values():
                definition = task["Properties"]["ContainerDefinitions"][0]
                found[definition["Name"]] = definition
    return found


def task_definition(rendered: dict[str, dict], name: str) -> dict:
    return next(task["Properties"] for file, template in rendered.items() if file.startswith("services")
                for task in resources(template, "AWS::ECS::TaskDefinition").values()
                if task["Properties"]["ContainerDefinitions"][0]["Name"] == name)


def refusals(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(config.ConfigError) as caught:
        app_from(data)
    return caught.value.problems


# --- the task definitions ----------------------------------------------------------------------------------


def test_every_container_drops_every_capability_runs_an_init_process_and_is_never_privileged(dks, dks_templates):
    found = containers(dks_templates)
    assert sorted(found) == sorted(s.name for s in dks.services)
    for name, definition in found.items():
        linux = definition["LinuxParameters"]
        # With Drop ALL the container has exactly Add; DKS's programs need none.
        assert linux["Capabilities"] == {"Drop": ["ALL"]}, name
        assert linux["InitProcessEnabled"] is True, name
        assert definition["Privileged"] is False, name


def test_the_database_and_the_api_have_a_read_only_root_and_the_ui_says_why_not(dks, dks_templates):
    found = containers(dks_templates)
    assert found["dks-db"]["ReadonlyRootFilesystem"] is True
    assert found["dks-api"]["ReadonlyRootFilesystem"] is True
    assert found["dks-ui"]["ReadonlyRootFilesystem"] is False
    ui = (DKS_DIR / "app.yaml").read_text().split("- name: dks-ui", 1)[1]
    assert "read_only: false" in ui and "Next.js writes its cache" in ui
    # The API writes only /tmp (Tomcat's work directory), a noexec tmpfs.
    assert found["dks-api"]["LinuxParameters"]["Tmpfs"] == [
        {"ContainerPath": "/tmp", "Size": config.TMPFS_MIB, "MountOptions": ["nosuid", "nodev", "noexec"]}]


def test_postgres_runs_as_postgres_and_writes_only_its_data_socket_tmp_and_init_folder(dks_templates):
    db = containers(dks_templates)["dks-db"]
    # As 70:70 the image's entrypoint neither chowns nor steps down with gosu: no capability needed.
    assert db["User"] == "70:70"
    mounts = {t["ContainerPath"]: t for t in db["LinuxParameters"]["Tmpfs"]}
    assert sorted(mounts) == ["/docker-entrypoint-initdb.d", "/tmp", "/var/run/postgresql"]
    assert all(t["Size"] == config.TMPFS_MIB and t["MountOptions"][:2] == ["nosuid", "nodev"] for t in mounts.values())
    # The wrapper writes the init script there executable; the entrypoint runs it (it would source it otherwise).
    assert mounts["/docker-entrypoint-initdb.d"]["MountOptions"][2] == "exec"
    assert mounts["/tmp"]["MountOptions"][2] == mounts["/var/run/postgresql"]["MountOptions"][2] == "noexec"
    assert "/docker-entrypoint-initdb.d/" in db["EntryPoint"][2]
    # The data itself is on EFS, writable by the access point's 70:70.
    assert db["MountPoints"] == [{"SourceVolume": "data", "ContainerPath": "/var/lib/postgresql/data"}]
    (volume,) = task_definition(dks_templates, "dks-db")["Volumes"]
    assert "EFSVolumeConfiguration" in volume


def test_hosts_refuse_privileged_containers(dks_templates):
    template = resources(dks_templates["cluster.yaml"], "AWS::EC2::LaunchTemplate")["HostLaunchTemplate"]
    user_data = template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"][0]
    assert "\nECS_DISABLE_PRIVILEGED=true\n" in user_data
    assert user_data.index("ECS_DISABLE_PRIVILEGED") < user_data.index("\nEOF")


def test_capabilities_user_init_and_a_writable_root_are_per_service_switches():
    data = dks_data()
    api = service(data, "dks-api")
    api.update(capabilities=["NET_BIND_SERVICE"], user="spring:spring", init=False, read_only=False, writable=[])
    api_definition = containers(templates(app_from(data)))["dks-api"]
    assert api_definition["LinuxParameters"] == {"Capabilities": {"Drop": ["ALL"], "Add": ["NET_BIND_SERVICE"]},
                                                 "InitProcessEnabled": False}
    assert api_definition["User"] == "spring:spring"
    assert api_definition["ReadonlyRootFilesystem"] is False


def test_data_without_efs_lives_on_a_task_volume_not_the_read_only_root():
    data = dks_data()
    data["persistence"] = "none"
    rendered = templates(app_from(data))
    db = containers(rendered)["dks-db"]
    assert db["ReadonlyRootFilesystem"] is True
    assert db["MountPoints"] == [{"SourceVolume": "data", "ContainerPath": "/var/lib/postgresql/data"}]
    # On the host's disk for the task's life, not in memory; Docker fills it with the image's directory.
    assert task_definition(rendered, "dks-db")["Volumes"] == [
        {"Name": "data", "DockerVolumeConfiguration": {"Scope": "task", "Driver": "local"}}]
    # A writable root keeps the data in the container, as before.
    service(data, "dks-db")["read_only"] = False
    rendered = templates(app_from(data))
    assert "MountPoints" not in containers(rendered)["dks-db"]
    assert "Volumes" not in task_definition(rendered, "dks-db")


def test_a_small_task_gets_smaller_tmpfs_that_together_take_at_most_half_its_memory():
    data = dks_data()
    service(data, "dks-db")["memory"] = 256
    mounts = containers(templates(app_from(data)))["dks-db"]["LinuxParameters"]["Tmpfs"]
    assert len(mounts) == 3 and {t["Size"] for t in mounts} == {256 // 6}


def test_a_file_inside_the_data_directory_takes_no_tmpfs():
    data = dks_data()
    db = service(data, "dks-db")
    db["files"] = {"/var/lib/postgresql/data/conf/extra.conf": "db-init.sh"}
    paths = [t["ContainerPath"] for t in containers(templates(app_from(data)))["dks-db"]["LinuxParameters"]["Tmpfs"]]
    assert paths == ["/var/run/postgresql", "/tmp"]


# --- the config: one sentence per bad value ------------------------------------------------------------------


@pytest.mark.parametrize("change, where, fact", [
    ({"capabilities": ["NET_ADMIN", "SYS_ADMN"]}, "capabilities[1]", "did you mean SYS_ADMIN?"),
    ({"capabilities": ["ALL"]}, "capabilities[0]", "ALL is not accepted"),
    ({"capabilities": ["CHOWN", "CHOWN"]}, "capabilities[1]", "listed twice"),
    ({"user": "post gres"}, "user", "is not a user ECS can run a container as"),
    ({"writable": ["tmp"]}, "writable[0]", "must be an absolute container directory"),
    ({"writable": ["/run:size=1m"]}, "writable[0]", "no spaces, commas or colons"),
    ({"writable": ["/var/lib/postgresql/data/"]}, "writable[0]", "data directory, writable already"),
    ({"writable": ["/a", "/b", "/a"]}, "writable[2]", "listed twice"),
    ({"files": {"/init.sh": "db-init.sh"}}, "files", "a file directly in / cannot be written on a read-only root"),
    # It spans memory, writable and files: said of the service.
    ({"writable": ["/a", "/b", "/c", "/d"], "memory": 9}, "", "5 tmpfs (writable directories and folders of files) "
                                                                "cannot share half of the task's 9 MiB"),
])
def test_bad_privilege_settings_are_refused_with_the_field(change, where, fact):
    data = dks_data()
    service(data, "dks-db").update(change)
    problems = refusals(data)
    field = f"services[0].{where}" if where else "services[0]"
    assert [reason for path, reason in problems if path == field and fact in reason], problems


def test_a_bad_capability_exits_2_with_one_sentence(tmp_path):
    user = '    user: "70:70"\n'
    text = (DKS_DIR / "app.yaml").read_text().replace(user, user + "    capabilities: [ALL]\n")
    (tmp_path / "app.yaml").write_text(text)
    shutil.copy(INIT_SCRIPT, tmp_path / "db-init.sh")
    run = subprocess.run([sys.executable, "-m", "templates_src", "build", "--config", str(tmp_path / "app.yaml"),
                          "--out", str(tmp_path / "build")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if "capabilities" in line]
    assert line.strip().startswith("services[0] (dks-db).capabilities[0]: 'ALL' is not a Linux capability ECS can add")
    assert not (tmp_path / "build").exists()


# --- the Compose import ----------------------------------------------------------------------------------------


def test_compose_privilege_keys_map_onto_the_config(tmp_path):
    result = compose_services.convert({"services": {"web": {
        "image": "nginx:1.27", "ports": ["8080:80"], "read_only": True, "tmpfs": ["/var/cache/nginx:size=1m", "/run"],
        "cap_drop": ["ALL"], "cap_add": ["CAP_NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"], "user": 101,
        "init": False}}}, tmp_path, tmp_path, {})
    (web,) = result.data["services"]
    assert web["read_only"] is True and web["writable"] == ["/var/cache/nginx", "/run"]
    assert web["capabilities"] == ["NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN"]
    assert web["user"] == "101" and web["init"] is False
    assert not [f for f in result.warnings if f.key in ("read_only", "tmpfs", "cap_add", "cap_drop", "user", "init")]
    app = config.parse({**result.data, "cluster": {"instance_type": "t3.medium", "max_size": 3}}, base_dir=tmp_path)
    checks.validate(app)
    assert app.service("web").capabilities == ("NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN")


def test_privileged_and_cap_add_all_are_reported_never_carried_over(tmp_path):
    result = compose_services.convert({"services": {"tool": {"image": "busybox", "privileged": True, "cap_add": ["ALL"],
                                                    "cap_drop": ["NET_RAW", "MKNOD"]}}}, tmp_path, tmp_path, {})
    (tool,) = result.data["services"]
    assert "privileged" not in tool and "ALL" not in tool["capabilities"]
    assert "MKNOD" not in tool["capabilities"] and "SETUID" in tool["capabilities"]
    messages = {f.key: f.message for f in result.warnings if f.service == "tool"}
    assert "the hosts refuse privileged containers" in messages["privileged"]
    assert "ALL is not carried over" in messages["cap_add"]


def test_services_compose_leaves_open_keep_what_compose_gave_them_less_net_raw(tmp_path):
    """An imported image was made and tried with a writable root and Docker's capabilities: the official
    postgres image chowns its data directory and steps down to its user with CHOWN, SETUID and SETGID."""
    result = compose_services.convert({"services": {"db": {"image": "postgres:16"},
                                           "web": {"image": "nginx:1.27", "ports": ["8080:80"],
                                                   "cap_add": ["SYS_PTRACE"]},
                                           "job": {"image": "busybox", "read_only": True, "cap_drop": ["ALL"]}}},
                             tmp_path, tmp_path, {})
    services = {s["name"]: s for s in result.data["services"]}
    assert services["db"]["read_only"] is False
    assert set(services["db"]["capabilities"]) == set(compose_services.COMPOSE_CAPABILITIES) >= {"CHOWN", "SETUID",
                                                                                                  "SETGID"}
    assert "NET_RAW" not in services["db"]["capabilities"]
    assert services["web"]["capabilities"][-1] == "SYS_PTRACE"
    assert services["job"]["read_only"] is True and "capabilities" not in services["job"]
    notes = {f.key: f.message for f in result.notes if f.service == ""}
    assert notes["read_only"].startswith("db, web: a writable root file system, as under Compose")
    assert notes["cap_drop"].startswith("db, web: Docker's default capabilities but NET_RAW")
    assert not [f for f in result.warnings if f.key in ("read_only", "cap_add", "cap_drop")]
    app = config.parse({**result.data, "cluster": {"instance_type": "t3.medium", "max_size": 3}}, base_dir=tmp_path)
    checks.validate(app)


def test_the_dks_compose_file_imports_with_the_hand_written_privileges(tmp_path):
    source = ROOT / "tests" / "compose" / "corpus" / "dks" / "docker-compose.yaml"
    run = subprocess.run([sys.executable, "-m", "templates_src", "import-compose", str(source), "-o",
                          str(tmp_path / "app.yaml")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    imported, written = loading.load(tmp_path / "app.yaml"), loading.load(config.DEFAULT_CONFIG)

    def privileges(app: config.App) -> dict:
        return {s.name: (s.read_only, s.writable, s.capabilities, s.user, s.init) for s in app.services}

    assert privileges(imported) == privileges(written)
    assert not re.search(r"warning: (read_only|cap_add|privileged)", run.stderr), run.stderr


# --- the DB init script --------------------------------------------------------------------------------------

HOSTILE = {"DB_ROLE_NAME": "dks-user'; DROP ROLE postgres; --\"", "DB_NAME": 'dks"db',
           "DB_ROLE_PASSWORD": "pa'ss\"word $(id) `id` \\"}


def test_the_init_script_puts_no_value_on_a_command_line_or_in_sql_text(tmp_path):
    """A stand-in psql records what it was given: any process on a host can read another's arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "psql").write_text('#!/bin/sh\nprintf "%s\\n" "$@" >> "$RECORD.args"\ncat >> "$RECORD.stdin"\n')
    (bin_dir / "psql").chmod(0o755)
    record = tmp_path / "psql"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "POSTGRES_USER": "postgres", "RECORD": str(record), **HOSTILE}
    run = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    args, stdin = (tmp_path / "psql.args").read_text(), (tmp_path / "psql.stdin").read_text()
    for name, value in HOSTILE.items():
        assert value not in args, name
        assert value not in stdin, name
        assert f"\\getenv " in stdin and name in stdin
    assert "ON_ERROR_STOP=1" in args
    # No CREATEDB / CREATEROLE, said explicitly.
    assert re.search(r"CREATE ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION", stdin)
    assert not re.search(r"(?<!NO)CREATE(DB|ROLE)\b", stdin)


def test_the_init_script_refuses_to_run_without_its_values(tmp_path):
    run = subprocess.run(["bash", str(INIT_SCRIPT)], env={"PATH": os.environ["PATH"], "POSTGRES_USER": "postgres",
                                                          "DB_NAME": "d", "DB_ROLE_NAME": "r"},
                         capture_output=True, text=True)
    assert run.returncode != 0 and "DB_ROLE_PASSWORD" in run.stderr


def _postgres_bin() -> Path | None:
    for candidate in [shutil.which("initdb"), *sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin/initdb")))]:
        if candidate:
            folder = Path(candidate).resolve().parent
            if all((folder / tool).exists() for tool in ("pg_ctl", "postgres")):
                return folder
    return None


def _psql_version() -> int:
    psql = shutil.which("psql")
    if not psql:
        return 0
    found = re.search(r"(\d+)", subprocess.run([psql, "--version"], capture_output=True, text=True).stdout)
    return int(found.group(1)) if found else 0


@pytest.fixture
def postgres(tmp_path):
    """A throwaway cluster on a socket in tmp_path, password (SCRAM) logins only: (socket dir, superuser password).

    initdb refuses root; as root the server runs in a user namespace where it is not (unshare --user),
    owning tmp_path's files all the same."""
    folder = _postgres_bin()
    if folder is None or _psql_version() < 15:
        pytest.skip("needs PostgreSQL's initdb and psql 15+ (\\getenv)")
    prefix = ["unshare", "--user"] if os.geteuid() == 0 else []
    if prefix and subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root, and no user namespace to run postgres outside it")
    password = "super'secret"
    (tmp_path / "pw").write_text(password + "\n")
    data, socket = tmp_path / "data", tmp_path / "s"
    socket.mkdir()
    subprocess.run([*prefix, str(folder / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                    f"--pwfile={tmp_path / 'pw'}"], check=True, capture_output=True)
    subprocess.run([*prefix, str(folder / "pg_ctl"), "-D", str(data), "-l", str(tmp_path / "log"), "-w", "-o",
                    f"-k {socket} -c listen_addresses=''", "start"], check=True, capture_output=True)
    try:
        yield socket, password
    finally:
        subprocess.run([*prefix, str(folder / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)


def test_the_init_script_makes_a_role_that_owns_its_database_and_can_make_nothing_else(postgres):
    socket, password = postgres
    # As postgres's entrypoint runs it: PGPASSWORD exported, the server on its socket.
    env = {"PATH": os.environ["PATH"], "PGHOST": str(socket), "PGPASSWORD": password, "POSTGRES_USER": "postgres",
           **HOSTILE}
    for _ in range(2):  # a second run changes nothing and does not fail
        run = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr

    def query(sql: str, user: str = "postgres", secret: str = password, database: str = "postgres"):
        return subprocess.run(["psql", "-X", "-tA", "-U", user, "-d", database, "-c", sql], capture_output=True,
                              text=True, env={"PATH": os.environ["PATH"], "PGHOST": str(socket), "PGPASSWORD": secret})

    role, database = HOSTILE["DB_ROLE_NAME"], HOSTILE["DB_NAME"]
    roles = query("SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolcanlogin FROM pg_roles "
                  "WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1").stdout.splitlines()
    assert roles == [f"{role}|f|f|f|f|t", "postgres|t|t|t|t|t"]
    owner = query("SELECT pg_get_userbyid(datdba), has_database_privilege('public', datname, 'CONNECT') "
                  f"FROM pg_database WHERE datname = '{database.replace(chr(39), chr(39) * 2)}'").stdout.strip()
    assert owner == f"{role}|f"
    # The API's role logs in with its password and makes its tables in its own database ...
    made = query("CREATE TABLE note (id int); SELECT current_user", role, HOSTILE["DB_ROLE_PASSWORD"], database)
    assert made.returncode == 0 and made.stdout.strip().endswith(role), made.stderr
    # ... and nothing beyond it.
    refused = query("CREATE DATABASE other", role, HOSTILE["DB_ROLE_PASSWORD"], database)
    assert refused.returncode != 0 and "permission denied" in refused.stderr
    assert query("SELECT 1", role, "wrong", database).returncode != 0
