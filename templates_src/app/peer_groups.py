"""Services that all reach each other share one security group instead of a rule per pair.

A Compose project puts every service on its default network, all-to-all: n services that reach each other
on their ports need n*(n-1) ingress rules (and as many egress rules) written pair by pair, which is more
than CloudFormation's 500 resources per stack from about 15 services on. A set of three or more services
each of which connects to every other (a clique of the peers graph, both directions) is written instead
as one group every member's task carries beside its own: the group may send to itself on the members'
ports, and each member's own group admits the shared group on that member's ports, so a member is still
reached only on the ports it listens on, with a number of rules that grows with the members, not the pairs.

An awsvpc task carries at most 5 security groups ("There's a limit of 5 security groups that can be
specified", https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_AwsVpcConfiguration.html; and
"Security groups per network interface", 5 by default,
https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html#vpc-limits-security-groups):
its own and at most 4 shared ones. A pair no chosen set covers keeps its own rules.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from templates_src.app.config import App

SMALLEST = 3  # two services that reach each other need no more rules as a pair than as a set
PER_TASK = 5 - 1  # the task's own group takes one of the five


@dataclass(frozen=True)
class PeerGroup:
    members: tuple[str, ...]  # sorted

    @property
    def name(self) -> str:
        """Named by its members, never by a position: reordering the config keeps the group."""
        return "peers-" + hashlib.sha256(",".join(self.members).encode()).hexdigest()[:8]

    def pairs(self) -> set[tuple[str, str]]:
        return {(a, b) for a in self.members for b in self.members if a != b}


_cache: dict[int, tuple[App, tuple[PeerGroup, ...]]] = {}


def peer_groups(app: App) -> tuple[PeerGroup, ...]:
    """The shared groups of the app, largest first: maximal cliques of awsvpc services that connect to each
    other both ways, chosen greedily while each one still covers a pair and no task exceeds its groups."""
    cached = _cache.get(id(app))
    if cached is not None and cached[0] is app:
        return cached[1]
    awsvpc = {svc.name for svc in app.awsvpc_services}
    out = {name: set(app.peers(app.service(name))) & awsvpc for name in awsvpc}
    mutual = {name: {peer for peer in out[name] if name in out[peer] and peer != name} for name in awsvpc}
    cliques = sorted((c for c in _maximal_cliques(mutual) if len(c) >= SMALLEST), key=lambda c: (-len(c), c))
    chosen: list[PeerGroup] = []
    covered: set[tuple[str, str]] = set()
    carried = {name: 0 for name in awsvpc}
    for members in cliques:
        group = PeerGroup(members)
        if group.pairs() <= covered or any(carried[m] == PER_TASK for m in members):
            continue
        chosen.append(group)
        covered |= group.pairs()
        for member in members:
            carried[member] += 1
    _cache[id(app)] = (app, tuple(chosen))
    return _cache[id(app)][1]


def groups_of(app: App, service: str) -> list[PeerGroup]:
    return [group for group in peer_groups(app) if service in group.members]


def covered(app: App) -> set[tuple[str, str]]:
    """(client, target) pairs a shared group already connects."""
    return set().union(*(group.pairs() for group in peer_groups(app)))


def _maximal_cliques(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Bron-Kerbosch with a pivot, iterative so a large app cannot exhaust the recursion limit."""
    found: list[tuple[str, ...]] = []
    stack = [(set(), set(graph), set())]
    while stack:
        clique, candidates, excluded = stack.pop()
        if not candidates and not excluded:
            found.append(tuple(sorted(clique)))
            continue
        pivot = max(candidates | excluded, key=lambda n: (len(graph[n] & candidates), n))
        for node in sorted(candidates - graph[pivot]):
            stack.append((clique | {node}, candidates & graph[node], excluded & graph[node]))
            candidates = candidates - {node}
            excluded = excluded | {node}
    return found
