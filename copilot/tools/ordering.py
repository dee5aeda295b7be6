"""Dependency order of tools: each after the tools it ``uses``, on :mod:`graphlib`.

    dependency_layers(["report_generator", "cxr_classifier"], tools)
    # [["cxr_classifier"], ["report_generator"]]

Rules:

- **Only the tools given count.** A tool's dependencies are the names in its manifest's
  ``uses`` that are among the tools being ordered (a tool it uses that is not planned, or not
  installed, constrains nothing); a tool never depends on itself.
- **Layers.** Layer ``k`` holds the tools whose dependencies are all in earlier layers: the
  tools of one layer may run together (the graph's execute node runs each layer in parallel).
- **Stable tie-break.** Within a layer, tools keep the order they were given in (duplicates
  count once). :func:`dependency_order` does not depend on the order given (a plan must not
  depend on how a set iterates): it makes passes over the tools by name, each pass taking
  every tool whose dependencies are already taken, earlier in the same pass included.
- **A cycle is a manifest mistake, not a failure.** Tools that use each other (a plug-in
  declaring ``uses`` back at a tool that uses it) are logged with a warning and ordered as if
  the tools on the cycle did not use each other; every tool is still placed exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from copilot.tools.contract import Tool

__all__ = ["dependency_layers", "dependency_order", "layers_of", "order_of"]

log = logging.getLogger(__name__)

Uses = Callable[[str], Iterable[str]]


def _sorter(given: list[str], uses: Uses) -> TopologicalSorter[str]:
    """A prepared sorter over ``given`` (cycles broken, with a warning)."""
    known = set(given)
    graph = {name: {d for d in uses(name) if d in known and d != name} for name in given}
    while True:
        sorter: TopologicalSorter[str] = TopologicalSorter()
        for name in given:
            sorter.add(name, *sorted(graph[name]))
        try:
            sorter.prepare()
            return sorter
        except CycleError as exc:
            cycle = list(exc.args[1])
            log.warning("tools use each other (%s): ordered as if they did not", " -> ".join(cycle))
            for name in cycle:
                graph[name] -= set(cycle)


def layers_of(names: Iterable[str], uses: Uses) -> list[list[str]]:
    """``names`` grouped into dependency layers, in the order given within a layer;
    ``uses(name)`` gives the names ``name`` depends on (any others than ``names`` are ignored)."""
    given = list(dict.fromkeys(names))
    rank = {name: i for i, name in enumerate(given)}
    sorter = _sorter(given, uses)
    out: list[list[str]] = []
    while sorter.is_active():
        layer = sorted(sorter.get_ready(), key=rank.__getitem__)
        out.append(layer)
        sorter.done(*layer)
    return out


def order_of(names: Iterable[str], uses: Uses) -> list[str]:
    """``names`` in dependency order: passes over them by name, each pass taking every tool
    whose dependencies are taken (earlier in the same pass included)."""
    pending = sorted(set(names))
    sorter = _sorter(pending, uses)
    ready = set(sorter.get_ready())
    taken: list[str] = []
    while pending:
        for name in list(pending):
            if name in ready:
                taken.append(name)
                pending.remove(name)
                sorter.done(name)
                ready.update(sorter.get_ready())
    return taken


def _uses(tools: Mapping[str, Tool]) -> Uses:
    """A tool's dependencies, from its manifest."""
    return lambda name: tools[name].manifest.uses


def dependency_layers(names: Iterable[str], tools: Mapping[str, Tool]) -> list[list[str]]:
    """The tools ``names`` (keys of ``tools``) as layers: each after the tools it uses, in the
    order given within a layer."""
    return layers_of(names, _uses(tools))


def dependency_order(names: Iterable[str], tools: Mapping[str, Tool]) -> list[str]:
    """The tools ``names`` (keys of ``tools``) in dependency order, by name within a layer."""
    return order_of(names, _uses(tools))
