"""Ports and networks: short and long port syntax, which port is public and which are HTTP, the
load balancers' listeners, network modes, Compose networks and who may reach whom.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from templates_src.app import config, names
from templates_src.compose.context import _Context, _dependencies, _image_name, _known, KNOWN_IMAGES, LOCALHOST_URL_PATH


# The load balancer's entry listener; other public services keep their published port.
ENTRY_LISTENER = 80
ENTRY_URL_OUTPUT = "AppUrl"


# Ports of data stores (a service publishing one is a database, whatever its image).
DATA_STORE_PORTS = {5432, 3306, 27017, 6379, 11211, 5672, 9042, 1433, 1521, 9200}
# Container ports that serve plain HTTP by convention (web servers, app frameworks' defaults, well-known web UIs);
# a published port is HTTP when it is one of these, the port of a known web image, or the port the service's own
# health check calls over http://localhost. Every other published port is TCP or UDP, forwarded by the Network
# Load Balancer as it comes: an HTTP health check on it could never pass.
HTTP_PORTS = frozenset({80, 3000, 3001, 4000, 5000, 5601, 8000, 8008, 8080, 8081, 8088, 8888, 9000, 9090, 15672})
# HTTPS answered by the container itself: the ALB speaks plain HTTP to its targets, so these pass through as TCP.
TLS_PORTS = frozenset({443, 8443})
# Protocols whose UDP side is the one clients use first (DNS, DHCP, TFTP, NTP, SNMP, syslog, RADIUS): when such a
# port is published over both and only one can be carried, it is UDP.
UDP_FIRST = frozenset({53, 67, 69, 123, 161, 514, 1812, 1813})


@dataclass(frozen=True)
class Port:
    target: int
    published: Optional[int]  # None: not published, or published on a random host port
    is_published: bool
    protocol: str = "tcp"
    host_ip: str = ""
    ranged: bool = False


def _first_port(text: str) -> tuple[int, bool]:
    first, _, last = text.partition("-")
    return int(first), bool(last)


# An `expose` range opens each of its ports to the service's peers (one security group rule each): a short range
# of workers' ports is carried whole, a wider one only by its first port, with a warning.
EXPOSE_RANGE_MOST = 32


def _exposed(entry: object) -> tuple[list[int], int]:
    """The ports an `expose` entry opens ('5222', '3000-3005', '9000/tcp') and the range's size."""
    first, _, last = str(entry).partition("/")[0].partition("-")
    low, high = int(first), int(last or first)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"'{entry}' is not a port or a range of ports")
    count = high - low + 1
    return list(range(low, high + 1)) if count <= EXPOSE_RANGE_MOST else [low], count


def parse_port(entry: object) -> Port:
    if isinstance(entry, dict):
        if "target" not in entry:
            raise ValueError("a long-syntax port needs `target`")
        target, ranged = _first_port(str(entry["target"]))
        published = entry.get("published")
        host, host_ranged = _first_port(str(published)) if published not in (None, "") else (None, False)
        return Port(target, host, True, str(entry.get("protocol", "tcp")).lower(), str(entry.get("host_ip", "")),
                    ranged or host_ranged)
    text = str(entry)
    text, _, protocol = text.partition("/")
    parts = text.rsplit(":", 2)
    target, ranged = _first_port(parts[-1])
    published, host_ranged = _first_port(parts[-2]) if len(parts) >= 2 and parts[-2] else (None, False)
    host_ip = parts[0].strip("[]") if len(parts) == 3 else ""
    return Port(target, published, True, (protocol or "tcp").lower(), host_ip, ranged or host_ranged)


class WideRange(ValueError):
    """A port range with more ports than may be carried; `count` says how many."""

    def __init__(self, count: int):
        self.count = count
        super().__init__(f"{count} ports")


def parse_ports(entry: object, most: Optional[int] = None) -> list[Port]:
    """Every port of a mapping: a range (`7000-7002:7000-7002`) is one Port per container port (WideRange past
    `most`, before any is made)."""
    first = parse_port(entry)
    if not first.ranged:
        return [first]
    if isinstance(entry, dict):
        target, published = str(entry["target"]), str(entry.get("published") or "")
    else:
        parts = str(entry).partition("/")[0].rsplit(":", 2)
        target, published = parts[-1], (parts[-2] if len(parts) >= 2 else "")
    targets = _port_range(target)
    hosts = _port_range(published) if published else None
    if hosts is not None and len(hosts) != len(targets):
        raise ValueError(f"{len(hosts)} host ports for {len(targets)} container ports")
    if most is not None and len(targets) > most:
        raise WideRange(len(targets))
    return [dataclasses.replace(first, target=t, published=hosts[i] if hosts is not None else None)
            for i, t in enumerate(targets)]


def _port_range(text: str) -> range:
    low, _, high = text.partition("-")
    found = range(int(low), int(high or low) + 1)
    if not found or not 0 <= found.start <= found.stop - 1 <= 65535:
        raise ValueError(f"'{text}' is not a port range")
    return found


def _is_data_store(svc: dict, port: int) -> bool:
    known = KNOWN_IMAGES.get(_image_name(svc))
    return known.data_store if known else port in DATA_STORE_PORTS


def _ports(ctx: _Context, key: str, svc: dict) -> tuple[int, list[Port]]:
    """The container port the service listens on (its HTTP one when it publishes one), and its published ports."""
    published: list[Port] = []
    targets: list[int] = []  # TCP ports the container listens on, in Compose's order
    for i, entry in enumerate(svc.get("ports") or []):
        try:
            found = parse_ports(entry, most=config.TARGET_GROUPS_PER_SERVICE)
        except WideRange as wide:
            ctx.warn(key, f"ports[{i}]", f"port range '{entry}' ({wide.count} ports) is not carried over: an ECS "
                                         f"service registers with at most {config.TARGET_GROUPS_PER_SERVICE} target "
                                         "groups, one per load-balanced port")
            continue
        except (ValueError, TypeError) as err:
            ctx.warn(key, f"ports[{i}]", f"'{entry}' is not a port mapping ({err}): ignored")
            continue
        if found[0].protocol not in ("tcp", "udp"):
            ctx.warn(key, f"ports[{i}]", f"{found[0].protocol} port {found[0].target} is not carried over: the Network "
                                         "Load Balancer forwards TCP and UDP")
            continue
        published += found
        targets += [port.target for port in found if port.protocol == "tcp"]
    exposed: list[int] = []
    for i, entry in enumerate(svc.get("expose") or []):
        try:
            ports, count = _exposed(entry)
        except ValueError:
            ctx.warn(key, f"expose[{i}]", f"'{entry}' is not a port: ignored")
            continue
        if count > len(ports):
            ctx.warn(key, f"expose[{i}]", f"port range '{entry}' ({count} ports): only {ports[0]} is opened to the "
                                          f"services that reach it (a range of at most {EXPOSE_RANGE_MOST} is "
                                          "carried whole)")
        exposed += ports
    distinct = list(dict.fromkeys([*targets, *exposed]))
    if distinct:
        # The ALB's health check goes to the service's port: it must be the HTTP one when there is one. The
        # others become `ports`, opened to the services that reach this one (_reach).
        port = next((t for t in distinct if t in targets and _is_http(svc, t)), distinct[0])
        unpublished = [t for t in distinct if t != port and t not in {p.target for p in published}]
        if unpublished and svc.get("network_mode") == "bridge":
            ctx.warn(key, "ports", f"listens on {', '.join(map(str, distinct))}; a bridge-mode service is reached "
                                   f"on its port only: {port} is carried over, {', '.join(map(str, unpublished))} not")
        return port, published
    known = _known(svc) or KNOWN_IMAGES.get(_image_name(svc))
    if known:
        ctx.note(key, "ports", f"no port in Compose; {known.port}, the port {_image_name(svc)} listens on")
        return known.port, published
    ctx.warn(key, "ports", "no port in Compose: port 8080 is a placeholder (only peers' security group rules and "
                           "the discovery record use it); set `port` to what the container listens on")
    return 8080, published


def _is_http(svc: dict, port: int) -> bool:
    """Whether the container serves plain HTTP on `port`, as far as Compose and the image say."""
    known = _known(svc) or KNOWN_IMAGES.get(_image_name(svc))
    if known and port == known.port:
        return not known.data_store
    if port in TLS_PORTS:
        return False
    test = (svc.get("healthcheck") or {}).get("test") if isinstance(svc.get("healthcheck"), dict) else None
    text = " ".join(map(str, test)) if isinstance(test, list) else str(test or "")
    if any(int(found.group(1) or 80) == port for found in LOCALHOST_URL_PATH.finditer(text)):
        return True
    return port in HTTP_PORTS


def _local(port: Port) -> bool:
    return port.host_ip in ("127.0.0.1", "::1", "localhost")


def _public_port(ctx: _Context, key: str, svc: dict, ports: tuple[int, list[Port]]) -> Optional[Port]:
    """The published HTTP port that makes this service public on the ALB, if any."""
    target, published = ports
    candidates = [p for p in published if p.target == target and p.protocol == "tcp"]
    if not candidates or not _is_http(svc, target):
        return None
    local = [p for p in candidates if _local(p)]
    if len(local) == len(candidates):
        ctx.warn(key, "ports", f"published on {local[0].host_ip} only (this machine): not made public")
        return None
    if _is_data_store(svc, target):
        ctx.warn(key, "ports", f"publishes {target}, a data store's port: not made public (a database open to the "
                               "internet invites attacks); peers reach it at its discovery name")
        return None
    return next(p for p in candidates if not _local(p))


def _published(ctx: _Context, key: str, svc: dict, ports: tuple[int, list[Port]],
               public: Optional[Port]) -> list[Port]:
    """The published ports the Network Load Balancer carries: every one but the ALB's, the ones bound to this
    machine and data stores' ports, at most one protocol per container port and as many as ECS registers."""
    port, published = ports
    chosen: dict[int, Port] = {}
    seen: set[tuple[int, Optional[int], str]] = set()
    for p in published:
        if p.protocol == "tcp" and p.target == port and _is_http(svc, port):
            continue  # the ALB's port: made public there, or _public_port said why not
        if (p.target, p.published, p.protocol) in seen:
            continue
        seen.add((p.target, p.published, p.protocol))
        what = f"{p.target}/{p.protocol}"
        if _local(p):
            ctx.warn(key, "ports", f"{what} is published on {p.host_ip} only (this machine): not made public")
            continue
        if _is_data_store(svc, p.target):
            ctx.warn(key, "ports", f"publishes {p.target}, a data store's port: not made public (a database open to "
                                   "the internet invites attacks); peers reach it at its discovery name")
            continue
        other = chosen.get(p.target)
        if other is not None:
            if other.protocol == p.protocol:
                continue  # the same container port on a second host port: one listener carries it
            keep = p if (p.protocol == "udp") == (p.target in UDP_FIRST) else other
            dropped = other if keep is p else p
            # https://github.com/aws/amazon-ecs-agent/issues/3428
            ctx.warn(key, "ports", f"{p.target} is published over TCP and UDP; an ECS container maps a port over one "
                                   f"of them: {keep.protocol.upper()} is carried over, {dropped.protocol.upper()} not")
            chosen[p.target] = keep
            continue
        chosen[p.target] = p
    kept: list[Port] = []
    for p in chosen.values():
        if p.protocol == "udp" and (p.target == port or not _tcp_port(svc, port, published)):
            ctx.warn(key, "ports", f"{p.target}/udp is not made public: a Network Load Balancer checks a UDP target's "
                                   "health over TCP, and the service has no TCP port to check; add a TCP port it "
                                   "listens on as `port` and the UDP one under `published` (health_port)")
            continue
        kept.append(p)
    room = config.TARGET_GROUPS_PER_SERVICE - (1 if public else 0)
    if len(kept) > room:
        ctx.warn(key, "ports", f"{', '.join(f'{p.target}/{p.protocol}' for p in kept[room:])} not made public: an ECS "
                               f"service registers with at most {config.TARGET_GROUPS_PER_SERVICE} target groups")
        kept = kept[:room]
    for p in kept:
        if p.protocol == "tcp" and _is_http(svc, p.target):
            ctx.note(key, "ports", f"{p.target} serves HTTP too; the config has one HTTP port per service, so the "
                                   "Network Load Balancer forwards it as TCP (health-checked by a TCP connection)")
    return kept


def _tcp_port(svc: dict, port: int, published: list[Port]) -> bool:
    """Whether the service's port is one Compose or the image says it listens on over TCP (a UDP target's health
    check goes there)."""
    known = _known(svc) or KNOWN_IMAGES.get(_image_name(svc))
    exposed = {str(e).partition("/")[0] for e in svc.get("expose") or []}
    return any(p.target == port and p.protocol == "tcp" for p in published) or str(port) in exposed \
        or bool(known and known.port == port)


def _listeners(ctx: _Context, chosen: list[str], services: list[dict], public: dict[str, Port],
               compose: dict[str, dict]) -> None:
    """The entry service answers on port 80; other public services keep their published port."""
    if not public:
        return
    by_key = dict(zip(chosen, services))
    needed_by_public = {dep for k in public for dep in _dependencies(compose[k])}
    entry = next((k for k, p in public.items() if p.published == ENTRY_LISTENER), None) \
        or next((k for k in public if k not in needed_by_public), next(iter(public)))
    taken = {ENTRY_LISTENER}
    for key, port in public.items():
        svc = by_key[key]
        if key == entry:
            listener = ENTRY_LISTENER
            svc["url_output"] = ENTRY_URL_OUTPUT
        else:
            listener = port.published if port.published and port.published not in taken | {443} else None
            if listener is None:
                listener = next(p for p in [port.target, *range(8080, 65536)] if p not in taken | {443})
        taken.add(listener)
        svc["public"] = {"port": listener}
        shown = f"published on {port.published}" if port.published else "published on a random host port"
        if listener != port.published:
            ctx.note(key, "ports", f"{shown} in Compose; the load balancer listens on {listener} (HTTP)")
    for key, svc in by_key.items():
        if key not in public:
            continue
        if "path" not in (svc.get("health_check") or {}):
            ctx.warn(key, "healthcheck", "the load balancer probes GET / (any 200-399 answer is healthy): set "
                                         "health_check.path if the app answers elsewhere")


def _network_listeners(ctx: _Context, chosen: list[str], services: list[dict], nlb: dict[str, list[Port]]) -> None:
    """Each port the Network Load Balancer carries listens on its published port (the container port when Compose
    picks a random one), or on the next free one when another service took it."""
    taken: set[int] = set()
    for key, svc in zip(chosen, services):
        entries = []
        for port in nlb.get(key, []):
            wanted = port.published or port.target
            listener = next(p for p in [wanted, *range(max(wanted, 1024), 65536), *range(1, 1024)] if p not in taken)
            taken.add(listener)
            entry: dict = {"port": listener}
            if port.protocol == "udp":
                entry["protocol"] = "UDP"
            if port.target != listener:
                entry["target"] = port.target
            entries.append(entry)
            shown = f"published on {port.published}" if port.published else "published on a random host port"
            if listener != port.published:
                ctx.note(key, "ports", f"{port.target}/{port.protocol} {shown} in Compose; the Network Load Balancer "
                                       f"listens on {listener}")
        if entries:
            svc["published"] = entries
            shown = ", ".join(f"{e['port']}/{e.get('protocol', 'TCP')}" for e in entries)
            ctx.note(key, "ports", f"{shown}: Network Load Balancer listener(s), forwarded as they come (not HTTP)")


def _bridge_udp(ctx: _Context, chosen: list[str], services: list[dict]) -> None:
    """A bridge task's UDP port cannot be health-checked on another port (Docker maps each to a host port the load
    balancer cannot know): it is left out, said so."""
    for key, svc in zip(chosen, services):
        if svc.get("network_mode") != "bridge" or not svc.get("published"):
            continue
        udp = [e for e in svc["published"] if e.get("protocol") == "UDP"]
        if udp:
            svc["published"] = [e for e in svc["published"] if e.get("protocol") != "UDP"]
            ctx.warn(key, "ports", f"{', '.join(str(e.get('target', e['port'])) for e in udp)}/udp not made public: "
                                   "the service runs with bridge networking, where a UDP port's TCP health check "
                                   "cannot be aimed")


def _network_modes(ctx: _Context, chosen: list[str], services: list[dict]) -> None:
    """A service whose environment names a public URL ({svc.url}: a port published on this machine)
    calls the app through the load balancer from inside its container, as it called localhost under
    Compose. An awsvpc task has no public IP and the VPC no NAT, so it could not: bridge networking
    gives it the host's. Unless another service reaches it by name, which bridge would take away."""
    names = dict(zip(chosen, (svc["name"] for svc in services)))
    named = {ref.service for svc in services for value in svc.get("environment", {}).values()
             for ref in config.references(str(value)) if ref.attribute in ("host", "port")}
    named |= {names[target] for targets in ctx.named_hosts.values() for target in targets if target in names}
    for key, svc in zip(chosen, services):
        calls = sorted({ref.service for value in svc.get("environment", {}).values()
                        for ref in config.references(str(value)) if ref.attribute == "url"})
        if not calls:
            continue
        if svc["name"] in named:
            ctx.warn(key, "environment", f"calls {', '.join(calls)} by public URL, which an awsvpc task cannot reach "
                                         "(no public IP, no NAT); it stays awsvpc because other services reach it "
                                         "by name: point it at their service names instead")
            continue
        svc["network_mode"] = "bridge"
        ctx.note(key, "network_mode", f"bridge: it calls {', '.join(calls)} by public URL from inside the container, "
                                      "through the host's public IP (an awsvpc task has none, and there is no NAT); "
                                      "it has no name or address another service could reach")


def _top_level_networks(ctx: _Context) -> None:
    networks = ctx.compose.get("networks") or {}
    for name, spec in (networks.items() if isinstance(networks, dict) else ()):
        spec = spec if isinstance(spec, dict) else {}
        if spec.get("external"):
            ctx.warn("", f"networks.{name}", "external network: what else is on it is outside the app and not "
                                             "reachable; the app's own services on it reach each other")
        elif set(spec) - {"name", "internal", "labels"}:
            ctx.note("", f"networks.{name}", f"{', '.join(sorted(set(spec) - {'name', 'internal', 'labels'}))} not "
                                             "carried over (one VPC); who shares the network is: see reaches")


def _networks_of(ctx: _Context, key: str, svc: dict) -> set[str]:
    """The Compose networks a service is on: `default` when it names none (Compose's own default)."""
    if "network_mode" in svc:
        return set()  # host, none, service:x: not on the project's networks (the key is warned about)
    value = svc.get("networks")
    if value is None:
        return {"default"}
    if isinstance(value, dict):
        for name, spec in value.items():
            extra = sorted(set(spec) - {"priority"}) if isinstance(spec, dict) else []
            if extra:
                ctx.warn(key, f"networks.{name}", f"{', '.join(extra)} not carried over: the service is reached by "
                                                  "its own name, at the address ECS gives its task")
        return {str(name) for name in value}
    return {str(name) for name in value} if isinstance(value, list) else {"default"}


def _listening(svc: dict) -> list[int]:
    """The TCP ports the Compose file says the container listens on (ports' targets, expose), in order."""
    found = []
    for entry in svc.get("ports") or []:
        try:
            port = parse_port(entry)
        except (ValueError, TypeError):
            continue
        if port.protocol == "tcp":
            found.append(port.target)
    for entry in svc.get("expose") or []:
        try:
            found += _exposed(entry)[0]
        except ValueError:
            continue
    return list(dict.fromkeys(found))


def _reach(ctx: _Context, chosen: list[str], compose: dict[str, dict], services: list[dict], namespace: str) -> None:
    """Compose lets every service reach every other on a network they share (the default one included), on
    any port: each service `reaches` those (beyond its depends_on), and a target's other ports — exposed,
    published or addressed by a peer (http://n8n:5679) — become its `ports`, opened to them only.
    The header says, per service, what it reaches."""
    by_key = dict(zip(chosen, services))
    networks = {key: _networks_of(ctx, key, compose[key]) for key in chosen}
    bridge = {key for key, svc in by_key.items() if svc.get("network_mode") == "bridge"}
    for key, svc in by_key.items():
        if key in bridge:
            continue
        addressed = sorted(ctx.addressed.get(key, set()))
        if addressed and not _listening(compose[key]) and not KNOWN_IMAGES.get(_image_name(compose[key])):
            # No port in Compose, but the others call it on one: that is the port, not the placeholder.
            svc["port"] = addressed[0]
            ctx.warnings = [w for w in ctx.warnings
                            if not (w.service == key and w.key == "ports" and "placeholder" in w.message)]
            ctx.note(key, "ports", f"no port in Compose; {addressed[0]}, the port other services address it on")
        extra = sorted((set(_listening(compose[key])) | set(addressed)) - {svc["port"]})
        extra = [port for port in extra if 1 <= port <= 65535]
        if extra:
            svc["ports"] = extra
            ctx.note(key, "ports", f"also listens on {', '.join(map(str, extra))}: opened to the services that reach "
                                   "it, not published")
    for key, svc in by_key.items():
        peers = sorted(other for other in chosen if other != key and networks[key] & networks[other])
        reached = [by_key[p]["name"] for p in peers if p not in bridge]
        waits = set(svc.get("depends_on") or [])
        reaches = [name for name in reached if name not in waits]
        if reaches:
            svc["reaches"] = reaches
        shared = sorted(networks[key])
        if reached:
            ctx.note(key, "networks", f"on {', '.join(shared)}: reaches {', '.join(reached)} by name, on every port "
                                      "each listens on")
        elif not networks[key]:
            ctx.note(key, "networks", "on no Compose network: reaches no other service")
        else:
            ctx.note(key, "networks", f"on {', '.join(shared)}, which no other reachable service shares: reaches "
                                      "none")
        unreachable = sorted(name for name in ctx.named_hosts.get(key, set()) if name in bridge)
        if unreachable:
            ctx.warn(key, "", f"names {', '.join(unreachable)} as a host, which runs with network_mode bridge: it has "
                              "no name or address of its own on ECS")
        cut = sorted(name for name in ctx.named_hosts.get(key, set())
                     if name in networks and name not in bridge and not networks[key] & networks[name])
        if cut:
            ctx.warn(key, "", f"names {', '.join(cut)} as a host but shares no Compose network with it: not "
                              "reachable, as under Compose")
    if chosen:
        example = by_key[chosen[0]]["name"]
        ctx.note("", "networks", f"service names resolve as written: the VPC's DNS search domain is {namespace}, so "
                                 f"{example} is {example}.{namespace}")
