"""Secrets: Compose secrets, passwords and keys found in environments, commands and files, made
into the app's generated secrets and shared where services share them.
"""
from __future__ import annotations

import re
import shlex
from typing import Optional

from templates_src.app import config, names
from templates_src.compose.context import _Context, _distinctive, _image_name, _known, _label, _unique


def _secrets(ctx: _Context, key: str, svc: dict, out: dict, secrets: dict[str, dict]) -> dict:
    """Compose secrets become generated secrets, written where Compose mounted them (`secret_files`):
    a program that reads /run/secrets/x, or X_FILE=/run/secrets/x, reads the same path on ECS."""
    declared = ctx.compose.get("secrets") or {}
    files: dict[str, str] = {}
    for i, entry in enumerate(svc.get("secrets") or []):
        source = str(entry.get("source", "")) if isinstance(entry, dict) else str(entry)
        target = str(entry.get("target") or source) if isinstance(entry, dict) else source
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        spec = declared.get(source)
        if spec is None:
            ctx.warn(key, f"secrets[{i}]", f"secret '{source}' is not declared at the top level: left out")
            continue
        secret = _label(source) or "secret"
        if secret not in secrets:
            origin = (f"from {spec['file']}" if isinstance(spec, dict) and spec.get("file") else
                      f"from ${spec['environment']}" if isinstance(spec, dict) and spec.get("environment") else
                      "external" if isinstance(spec, dict) and spec.get("external") else "")
            secrets[secret] = {"description": f"Compose secret {source}"}
            ctx.warn("", f"secrets.{source}", f"becomes the generated secret '{secret}': Secrets Manager generates "
                                              f"its value at deploy time (32 letters and digits); the Compose value "
                                              f"({origin or 'not given'}) is not copied. A value that must be exact "
                                              "(an API key) has to be set in Secrets Manager after deploying")
        files[path] = secret
        ctx.secret_mounts.setdefault(key, []).append((f"secrets[{i}]", path, secret))
    return {"secret_files": files} if files else {}


def _secret_files_as_variables(ctx: _Context, key: str, out: dict) -> None:
    """With no program to hand over to, no wrapper writes the secret files: each secret is given as an
    environment variable instead, which the app must read."""
    environment = out["environment"]
    given = out.setdefault("secrets", {})
    for where, path, secret in ctx.secret_mounts.get(key, []):
        pointer = next((var for var, value in environment.items() if value == path and var.endswith("_FILE")), None)
        if pointer:
            variable = pointer[:-len("_FILE")]
            del environment[pointer]
            ctx.note(key, where, f"{pointer}={path} becomes {variable} from the secret '{secret}': the image's "
                                 "entrypoint is unknown, so no wrapper can write the file before it starts")
        else:
            variable = re.sub(r"[^A-Za-z0-9_]", "_", path.rsplit("/", 1)[-1]).upper()
            if not re.match(r"[A-Z_]", variable):
                variable = f"SECRET_{variable}"
            ctx.warn(key, where, f"the container read the secret from the file {path}; it now gets it in the "
                                 f"environment variable {variable}, since the image's entrypoint is unknown and no "
                                 "wrapper can write the file before it starts: the app must read the variable "
                                 "instead, or set entrypoint to what the image runs")
        for var, value in environment.items():
            if value == path:  # a path, not a password: never made a secret of its own
                ctx.generated.add((out["name"], var))
                ctx.warn(key, f"environment.{var}", f"names the secret file {path}, which is not written (see "
                                                    f"{where})")
        environment.pop(variable, None)
        given[variable] = secret
    out.pop("secret_files", None)


# A password the app and its peers share: a value Secrets Manager generates serves as well.
# (PWD alone is the shell's working directory.)
PASSWORD_VARIABLE = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|_(PWD|PASS|AUTH)$|^PASS$", re.IGNORECASE)
# Services whose *_KEY variables hold a key they issued (STRIPE_KEY, SENDGRID_API_KEY, AWS_SECRET_ACCESS_KEY).
KEYED_SERVICES = ("AWS", "AZURE", "GOOGLE", "GCP", "STRIPE", "PAYPAL", "SENDGRID", "MAILGUN", "MAILCHIMP", "POSTMARK",
                  "TWILIO", "GITHUB", "GITLAB", "SLACK", "OPENAI", "ANTHROPIC", "DATADOG", "DD", "SENTRY", "ALGOLIA",
                  "PUSHER", "MAPBOX", "CLOUDFLARE", "HEROKU", "NPM", "DOCKER", "SEGMENT", "SHOPIFY", "FIREBASE")
# A key or token someone issued: secret too, but exact, so its value is set in Secrets Manager after deploying.
SECRET_LOOKING = re.compile(r"SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|SIGNING_?KEY|ENCRYPTION_?KEY|CREDENTIAL"
                            rf"|^({'|'.join(KEYED_SERVICES)})_(\w*_)?KEY$", re.IGNORECASE)
# Endings that make such a name hold something else: POSTGRES_PASSWORD_FILE is a path, JWT_SECRET_TTL a
# number, AWS_ACCESS_KEY_ID an identifier, TOKEN_URL an address (a password in a URL is found below).
NOT_A_SECRET_VARIABLE = re.compile(r"_(FILE|PATH|DIR|METHOD|TYPE|ALGORITHM|ALG|ID|LENGTH|TTL|EXPIRY|EXPIRES|"
                                   r"LIFETIME|HEADER|NAME|URL|URI|HOST|PORT|USER|USERNAME|ENABLED|REQUIRED|POLICY|"
                                   r"BACKEND|MODE)$", re.IGNORECASE)
NOT_A_PASSWORD = {"", "true", "false", "yes", "no", "0", "1", "on", "off"}
# scheme://user:password@host: the password, whatever the variable is called. Anchored at "://", not at
# the scheme: a match may start only there, so a long value is scanned once (see url_hosts).
URL_PASSWORD = re.compile(r"(?P<head>://[^/@\s:]*):(?P<password>[^/@\s]+)@")


def _secret_kind(var: str, value: str) -> Optional[str]:
    """"password" or "key" for a variable whose value is a secret; None for any other."""
    if value.lower() in NOT_A_PASSWORD or "{" in value or NOT_A_SECRET_VARIABLE.search(var):
        return None
    if PASSWORD_VARIABLE.search(var):
        return "password"
    return "key" if SECRET_LOOKING.search(var) else None


def _password_secrets(ctx: _Context, services: list[dict], secrets: dict[str, dict], chosen: list[str]) -> None:
    """Every value that is, or holds, a secret becomes a generated secret; one per distinct value among services
    that connect (see `_groups`), under whatever name it is repeated, and every health check, command,
    entrypoint and file holding it follows it or is reported. Nothing of its value is written to app.yaml or
    said in a message.

    A secret fills a whole variable (ECS's `secrets`), never part of one: a URL's password moves to a
    variable of its own, and any other value holding a secret becomes a secret as a whole.
    """
    compose_name = dict(zip((s["name"] for s in services), chosen))
    for svc in services:
        for var, value in list(svc["environment"].items()):
            found = URL_PASSWORD.search(value)
            if not found or (svc["name"], var) in ctx.generated or "{" in found.group("password") \
                    or found.group("password").lower() in NOT_A_PASSWORD:
                continue
            holder = _unique(f"{var}_PASSWORD", svc["environment"], "_")
            ctx.secret_values.update((value, found.group("password")))
            svc["environment"][var] = URL_PASSWORD.sub(lambda m: m.group("head") + "@", value)
            svc["environment"][holder] = found.group("password")
            ctx.warn(compose_name[svc["name"]], f"environment.{var}",
                     f"its URL held a password: the URL keeps the rest, and the password is in {holder}, from a "
                     "generated secret (ECS fills a whole variable from a secret, never part of one); the app must "
                     f"read it from {holder}, or set the whole URL in Secrets Manager after deploying")
    config_name = dict(zip(chosen, (s["name"] for s in services)))
    links = _links(services, {config_name[key]: {config_name[n] for n in names if n in config_name}
                              for key, names in ctx.named_hosts.items() if key in config_name})
    # value -> its uses (service, variable, why it is a secret): "password", "key", "same" (the value of a
    # secret under any other name) or "whole" (a value with a secret inside).
    holders: dict[str, list[tuple[dict, str, str]]] = {}
    held: set[tuple[str, str]] = set()
    for svc in services:
        paths = svc.get("secret_files") or {}
        for var, value in svc["environment"].items():
            kind = None if (svc["name"], var) in ctx.generated or value in paths else _secret_kind(var, value)
            if kind:
                holders.setdefault(value, []).append((svc, var, kind))
                held.add((svc["name"], var))
    # Words a short value may be without being that secret: a user named like its password (postgres).
    words = {str(name).lower() for name in chosen} | {_image_name(ctx.compose["services"][name]) for name in chosen}
    words |= {value.lower() for svc in services for var, value in svc["environment"].items()
              if NOT_A_SECRET_VARIABLE.search(var)}
    for value in list(holders):
        inside, same = _distinctive(value), len(value) >= 8 and value.lower() not in words
        for svc in services:
            for var, other in svc["environment"].items():
                if (svc["name"], var) in held or (svc["name"], var) in ctx.generated:
                    continue
                if other == value and (inside or same):
                    holders[value].append((svc, var, "same"))
                elif inside and value in other:
                    holders.setdefault(other, []).append((svc, var, "whole"))
                else:
                    continue
                held.add((svc["name"], var))
    chosen_secret: dict[tuple[str, str], str] = {}  # (value, service) -> the secret its uses there became
    for value, uses in holders.items():
        ctx.secret_values.add(value)
        groups = _groups(uses, links)
        for group in groups:
            first_svc, first_var, _ = group[0]
            secret = _unique(_label(first_var), secrets)
            secrets[secret] = {"description": f"{first_var} of {first_svc['name']} (imported from Compose)"}
            apart = [f"{compose_name[s['name']]}.{v}" for other in groups if other is not group for s, v, _ in other]
            for svc, var, kind in group:
                del svc["environment"][var]
                svc.setdefault("secrets", {})[var] = secret
                chosen_secret.setdefault((value, svc["name"]), secret)
                _said_secret(ctx, (compose_name[svc["name"]], f"environment.{var}"), secret, kind,
                             [f"{compose_name[s['name']]}.{v}" for s, v, _ in group
                              if (s["name"], v) != (svc["name"], var)], apart)
    # Where a value is looked for in commands and files: anywhere when distinctive, else as a word of its own;
    # a commands' word of 8 characters or more that is no name is taken for the secret, a shorter one is said.
    patterns = {value: re.compile(re.escape(value) if _distinctive(value) else rf"(?<![\w.-]){re.escape(value)}"
                                  r"(?![\w.-])") for value in sorted(holders, key=len, reverse=True)
                if _distinctive(value) or len(value) >= 4 and value.lower() not in words}
    sure = {value: pattern for value, pattern in patterns.items() if _distinctive(value) or len(value) >= 8}
    _secrets_in_commands(ctx, services, holders, chosen_secret, links, compose_name, sure)
    # A file is no command: a word such as "password" in it is left there, and said.
    _secrets_in_files(ctx, services, holders, compose_name, {v: p for v, p in patterns.items() if _distinctive(v)})
    _unsure_secrets(ctx, services, holders, compose_name, {v: p for v, p in patterns.items() if v not in sure},
                    {v: p for v, p in patterns.items() if not _distinctive(v)})


def _said_secret(ctx: _Context, where: tuple[str, str], secret: str, kind: str, shared: list[str],
                 apart: list[str]) -> None:
    """What became of one variable; a warning where the user has something to do or decide, a note otherwise."""
    together = f", shared with {', '.join(shared)}" if shared else ""
    if apart:
        together += (f"; {', '.join(apart)} had the same value in Compose, under another name, but do not connect "
                     "to this service (no depends_on or name between them), so theirs is a secret of its own: set "
                     "them equal in Secrets Manager if they must match")
    message = {
        "password": f"a plain password in Compose; now the generated secret '{secret}'{together} (the Compose value "
                    "is not copied)",
        "key": f"looks secret; now the generated secret '{secret}'{together} (the Compose value is not copied): if "
               "it must be exact (a key someone issued), set it in Secrets Manager after deploying",
        "same": f"held the same value as a secret, so it is that secret: the generated secret '{secret}'{together} "
                "(the Compose value is not copied)",
        "whole": f"holds a secret's value, so it is a secret as a whole: the generated secret '{secret}'{together} "
                 "(the Compose value is not copied); set its exact value in Secrets Manager after deploying",
    }[kind]
    (ctx.warn if apart or kind in ("key", "whole") else ctx.note)(*where, message)


def _links(services: list[dict], hosts: dict[str, set[str]]) -> dict[str, set[str]]:
    """Which services connect, either way: depends_on, or a name in the environment ({svc.host}, {svc.url}, or
    a service's own name, which resolves as written: `hosts`, by config name)."""
    links: dict[str, set[str]] = {svc["name"]: set() for svc in services}
    for svc in services:
        named = {ref.service for value in svc["environment"].values() for ref in config.references(str(value))}
        named |= hosts.get(svc["name"], set())
        for other in (set(svc.get("depends_on") or ()) | named) & set(links) - {svc["name"]}:
            links[svc["name"]].add(other)
            links[other].add(svc["name"])
    return links


def _groups(uses: list[tuple[dict, str, str]], links: dict[str, set[str]]) -> list[list[tuple[dict, str, str]]]:
    """The uses of one value, grouped: one secret per group. Two uses are in one group when they are the same
    variable (SECRET_KEY of a web and a worker process: one setting of the app), both keys or tokens (nobody
    picks the same random key twice by chance), or in services that connect (a client's DB_PASSWORD and the
    database's POSTGRES_PASSWORD: one credential), or through another use.

    Compose gives every service its own value; equal passwords under different names in services that never
    talk (a dashboard's admin login and a database's superuser password) are a coincidence of the kind people
    make ("changeme"): one secret would tie them together for no reason, and a leak of either would open both."""
    parent = list(range(len(uses)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (svc, var, kind) in enumerate(uses):
        for j in range(i):
            other, other_var, other_kind = uses[j]
            if var == other_var or kind == other_kind == "key" or svc["name"] == other["name"] \
                    or other["name"] in links[svc["name"]]:
                parent[root(i)] = root(j)
    groups: dict[int, list] = {}
    for i, use in enumerate(uses):
        groups.setdefault(root(i), []).append(use)
    return list(groups.values())


def _shell_substitute(text: str, value: re.Pattern, variable: str) -> str:
    """A shell command with each `value` in it read from $variable instead, wherever it stands: unquoted it
    becomes "${variable}", in double quotes ${variable}, and in single quotes, where the shell expands
    nothing, the quotes are closed around "${variable}"."""
    reference = "${" + variable + "}"
    out, i, quote = [], 0, None
    while i < len(text):
        found = value.match(text, i)
        if found:
            out.append({None: f'"{reference}"', '"': reference, "'": f"'\"{reference}\"'"}[quote])
            i = found.end()
            continue
        char = text[i]
        if char == "\\" and quote != "'" and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
            continue
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        out.append(char)
        i += 1
    return "".join(out)


def _shell_word(arg: str, found: list[tuple[re.Pattern, str]]) -> str:
    """One argument of an exec form as a shell word, with each secret value in it read from its variable."""
    for value, variable in found:
        if value.search(arg):
            return f'"${{{variable}}}"'.join(_shell_word(piece, found) if piece else "" for piece in value.split(arg))
    return shlex.quote(arg)


def _variable_for(svc: dict, value: str, holders: dict[str, list[tuple[dict, str, str]]],
                  chosen_secret: dict[tuple[str, str], str], links: dict[str, set[str]]) -> tuple[str, str]:
    """The variable that holds `value`'s secret in `svc` (added from the secret when it has none), and the secret."""
    secret = chosen_secret.get((value, svc["name"]))
    if secret is None:  # not in this service's environment: the secret of a service it connects to, or the first
        near = [(other, var) for other, var, _ in holders[value] if other["name"] in links[svc["name"]]]
        other, var = (near or [holders[value][0][:2]])[0]
        secret = other["secrets"][var]
    given = svc.setdefault("secrets", {})
    for variable, name in given.items():
        if name == secret:
            return variable, secret
    variable = _unique(holders[value][0][1], {**svc["environment"], **given}, "_")
    given[variable] = secret
    return variable, secret


def _secrets_in_commands(ctx: _Context, services: list[dict], holders: dict[str, list[tuple[dict, str, str]]],
                         chosen_secret: dict[tuple[str, str], str], links: dict[str, set[str]],
                         compose_name: dict[str, str], patterns: dict[str, re.Pattern]) -> None:
    """A secret's value written into a health check, command or entrypoint (Compose interpolates ${VAR} from
    .env at import time) is read from the variable that holds it instead; the container has it from the
    secret (ECS injects secrets as environment variables,
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/secrets-envvar-secrets-manager.html).

    A health check runs through the container's shell (CMD-SHELL). A command or entrypoint runs without
    one, as an exec form: it is run through /bin/sh -c "exec ..." with the program's words quoted, which
    needs the program's entrypoint (Compose's, or a known image's) and a shell in the image."""
    for svc in services:
        key = compose_name[svc["name"]]
        check = svc.get("health_check") or {}
        for value, pattern in patterns.items():
            if pattern.search(check.get("command") or ""):
                variable, secret = _variable_for(svc, value, holders, chosen_secret, links)
                check["command"] = _shell_substitute(check["command"], pattern, variable)
                ctx.note(key, "healthcheck.test", f"held the value of the secret '{secret}': now ${{{variable}}}, "
                                                  "which the container's shell reads from the secret")
        words = [str(part) for part in (svc.get("entrypoint") or []) + (svc.get("command") or [])]
        inside = [value for value, pattern in patterns.items() if any(pattern.search(word) for word in words)]
        if not inside:
            continue
        where = "entrypoint" if any(patterns[value].search(str(part)) for value in inside
                                    for part in svc.get("entrypoint") or []) else "command"
        known = _known(ctx.compose["services"][key])
        program: Optional[list[str]] = None
        if svc.get("entrypoint"):
            program = words
        elif known and known.entrypoint:
            program = [*known.entrypoint, *(svc.get("command") or known.command)]
        found = [(patterns[value], _variable_for(svc, value, holders, chosen_secret, links)[0]) for value in inside]
        if program is None:
            # The Compose value is written nowhere: the words hold the variable's name, which the user wires up.
            for name in ("entrypoint", "command"):
                for pattern, variable in found:
                    if svc.get(name):
                        svc[name] = [pattern.sub(f"${{{variable}}}", str(part)) for part in svc[name]]
            variables = ", ".join(variable for _, variable in found)
            ctx.warn(key, where, f"held the value of {variables}, a secret now, and holds ${{...}} in its place, which "
                                 "nothing expands: ECS runs it without a shell, and the image's entrypoint is unknown, "
                                 "so it cannot be run through one; set entrypoint in the Compose file to what the "
                                 f"image runs and import again, or change the {where} to read {variables}")
            continue
        svc["entrypoint"] = ["/bin/sh", "-c", "exec " + " ".join(_shell_word(word, found) for word in program)]
        svc.pop("command", None)
        ctx.note(key, where, f"held the value of {', '.join(v for _, v in found)}, a secret now: it runs through "
                             f"/bin/sh -c \"exec ...\" so the shell reads {', '.join('$' + v for _, v in found)} from "
                             "the secret (ECS runs a command without a shell; the image needs /bin/sh)")


def _secrets_in_files(ctx: _Context, services: list[dict], holders: dict[str, list[tuple[dict, str, str]]],
                      compose_name: dict[str, str], patterns: dict[str, re.Pattern]) -> None:
    """A carried file holding a secret's value is not carried: its text would sit in the task definition in
    plain text, and it would hold the Compose value, not the generated secret's."""
    for svc in services:
        for target, source in list((svc.get("files") or {}).items()):
            text = ctx.file_contents.get(source, "")
            secret_of = next((holders[v][0][0]["secrets"][holders[v][0][1]] for v, pattern in patterns.items()
                              if pattern.search(text)), None)
            if secret_of is None:
                continue
            del svc["files"][target]
            ctx.warn(compose_name[svc["name"]], f"files.{target}", f"{source} holds the value of the secret "
                     f"'{secret_of}': not carried over (its text would sit in plain text in the task definition, "
                     "with the Compose value rather than the generated one); have the program read the secret's "
                     "variable, or put the file in the image and set the secret's value in Secrets Manager")
    used = {source for svc in services for source in (svc.get("files") or {}).values()}
    for source in [name for name in ctx.file_contents if name not in used]:
        del ctx.file_contents[source]


def _unsure_secrets(ctx: _Context, services: list[dict], holders: dict[str, list[tuple[dict, str, str]]],
                    compose_name: dict[str, str], in_commands: dict[str, re.Pattern],
                    in_files: dict[str, re.Pattern]) -> None:
    """A short secret value standing as a word in a check, command or file may be that secret or a word
    that happens to be the same: it is left, and said."""
    for svc in services:
        texts = [("healthcheck.test", (svc.get("health_check") or {}).get("command") or "", in_commands)]
        texts += [(name, " ".join(map(str, svc.get(name) or [])), in_commands) for name in ("entrypoint", "command")]
        texts += [(f"files.{target}", ctx.file_contents.get(source, ""), in_files) for target, source in
                  (svc.get("files") or {}).items()]
        for where, text, patterns in texts:
            for value, pattern in patterns.items():
                if pattern.search(text):
                    first_svc, first_var, _ = holders[value][0]
                    ctx.warn(compose_name[svc["name"]], where, f"holds a word equal to the value of "
                             f"{compose_name[first_svc['name']]}.{first_var}, a generated secret now, too short to "
                             "tell it from a word that happens to be the same: left as it was; if it is that "
                             "password, read it from the secret's variable, or make the value 12 characters or "
                             "more in Compose and import again")
