"""What a group of failures does to the rest of the asset graph, for one trading date.

Read from the Dagster asset graph, never guessed:

- the **root assets**: the failing assets that no other failing asset is upstream of (a bad EOD
  mark that also fails the checks on market values and P&L has one root, the marks);
- **halted**: every asset downstream of an asset with a failed blocking check (Dagster skips them
  for that partition) and the assets of a step that failed for another reason (they were not
  built either);
- **degraded**: downstream of warnings only: built, but from data a check doubts;
- **unaffected**: the rest.

Owners (Dagster ``owners``), business processes (``cei/business_processes``) and criticality
(``cei/criticality``) are the assets' own declarations (``cei_assets.ownership``). The critical
path is the shortest lineage from a root to the P&L.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from cei_assets.incidents.facts import Failure, Impact

PNL_ASSET = "daily_pnl"
TEAM_PREFIX = "team:"
# Lowest first; an asset that declares none counts as "low".
CRITICALITY = ("low", "medium", "high", "critical")


def halts(failure: Failure) -> bool:
    """Whether a failure stops what is downstream of it (blocking, not a warning)."""
    return failure.blocking and not failure.warn_only


def failing_assets(failure: Failure, run_assets: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The assets a failure is about.

    A check: its asset. A step that failed for another reason: the assets the step was to build
    (``metadata["assets"]``). A run that failed before any step: the assets the run had planned,
    when the caller read them from the instance (``run_assets``).
    """
    if failure.kind == "check":
        return [failure.asset_key] if failure.asset_key else []
    assets = [str(a) for a in failure.metadata.get("assets") or [] if a]
    if not assets and failure.asset_key:
        assets = [failure.asset_key]
    if not assets and run_assets:
        assets = [str(a) for a in run_assets.get(failure.run_id, [])]
    return sorted(set(assets))


def team_name(owner: str) -> str | None:
    """``team:market-data`` -> ``market-data``; a person (an email) is not a team."""
    return owner[len(TEAM_PREFIX):] if owner.startswith(TEAM_PREFIX) else None


class LineageView:
    """The asset graph as plain strings: parents, children, owners and the ``cei/`` metadata."""

    def __init__(self, asset_graph):
        self._nodes: dict[str, object] = {}
        for key in asset_graph.get_all_asset_keys():
            self._nodes[key.to_user_string()] = asset_graph.get(key)

    @property
    def assets(self) -> list[str]:
        return sorted(self._nodes)

    def __contains__(self, asset: str) -> bool:
        return asset in self._nodes

    def children(self, asset: str) -> list[str]:
        node = self._nodes.get(asset)
        return sorted(k.to_user_string() for k in node.child_keys) if node is not None else []

    def parents(self, asset: str) -> list[str]:
        node = self._nodes.get(asset)
        return sorted(k.to_user_string() for k in node.parent_keys) if node is not None else []

    def downstream(self, assets: Iterable[str]) -> set[str]:
        """Every asset strictly downstream of any of ``assets``."""
        seen: set[str] = set()
        queue = deque(assets)
        while queue:
            for child in self.children(queue.popleft()):
                if child not in seen:
                    seen.add(child)
                    queue.append(child)
        return seen

    def upstream(self, assets: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        queue = deque(assets)
        while queue:
            for parent in self.parents(queue.popleft()):
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return seen

    def owners(self, asset: str) -> list[str]:
        node = self._nodes.get(asset)
        return list(getattr(node, "owners", None) or []) if node is not None else []

    def metadata(self, asset: str, name: str):
        node = self._nodes.get(asset)
        if node is None:
            return None
        value = (node.metadata or {}).get(name)
        return getattr(value, "value", value)

    def criticality(self, asset: str) -> str:
        value = self.metadata(asset, "cei/criticality")
        return value if value in CRITICALITY else "low"

    def business_processes(self, asset: str) -> list[str]:
        value = self.metadata(asset, "cei/business_processes")
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else []

    def shortest_path(self, sources: Sequence[str], target: str) -> list[str]:
        """The shortest lineage from any of ``sources`` to ``target`` (sources tried in order)."""
        if target not in self._nodes:
            return []
        previous: dict[str, str | None] = {}
        queue: deque[str] = deque()
        for source in sources:
            if source in self._nodes and source not in previous:
                previous[source] = None
                queue.append(source)
        while queue:
            asset = queue.popleft()
            if asset == target:
                path = [asset]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return path[::-1]
            for child in self.children(asset):
                if child not in previous:
                    previous[child] = asset
                    queue.append(child)
        return []


def assess_impact(
    failures: Sequence[Failure],
    asset_graph,
    *,
    run_assets: Mapping[str, Sequence[str]] | None = None,
    pnl_asset: str = PNL_ASSET,
) -> Impact:
    """The impact of a group of failures (of one partition) on the asset graph."""
    lineage = asset_graph if isinstance(asset_graph, LineageView) else LineageView(asset_graph)

    failing: dict[str, list[Failure]] = {}
    for failure in failures:
        for asset in failing_assets(failure, run_assets):
            failing.setdefault(asset, []).append(failure)

    # A failing asset downstream of another failing asset is part of that one's cascade.
    upstream_of = {asset: lineage.upstream([asset]) for asset in failing}
    roots = sorted(asset for asset in failing if not (upstream_of[asset] & (set(failing) - {asset})))

    halting = {asset for asset, fs in failing.items() if any(halts(f) for f in fs)}
    # A step that failed for another reason built none of its assets: they are halted too.
    unbuilt = {asset for asset, fs in failing.items() if any(f.kind != "check" and halts(f) for f in fs)}
    halted = (lineage.downstream(halting) | unbuilt) - set(roots)
    warning = {asset for asset, fs in failing.items() if any(not halts(f) for f in fs)}
    degraded = (lineage.downstream(warning) | (warning - set(roots))) - halted - set(roots)

    touched = set(roots) | halted | degraded
    unaffected = sorted(a for a in lineage.assets if a not in touched)
    ordered = [*roots, *sorted(halted), *sorted(degraded)]

    owners = {asset: lineage.owners(asset) for asset in ordered if lineage.owners(asset)}
    teams: list[str] = []
    for asset in [*roots, *sorted(halted), *sorted(degraded)]:
        for owner in lineage.owners(asset):
            team = team_name(owner)
            if team and team not in teams:
                teams.append(team)

    processes: list[str] = []
    for asset in ordered:
        for process in lineage.business_processes(asset):
            if process not in processes:
                processes.append(process)

    levels = [CRITICALITY.index(lineage.criticality(a)) for a in ordered if a in lineage]
    criticality = CRITICALITY[max(levels)] if levels else "low"

    critical_path = lineage.shortest_path(roots, pnl_asset)
    return Impact(
        root_assets=roots,
        halted=sorted(halted),
        degraded=sorted(degraded),
        unaffected=unaffected,
        owners=owners,
        teams=teams,
        business_processes=processes,
        criticality=criticality,
        critical_path=critical_path,
    )
