"""The prerequisite graph of skills: cycle detection, closure and topological order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle (as a list of nodes) in ``graph`` (node -> prerequisites), or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    for start in graph:
        if colour[start] != white:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        colour[start] = grey
        while stack:
            node, index = stack[-1]
            children = [c for c in graph.get(node, ()) if c in colour]
            if index < len(children):
                stack[-1] = (node, index + 1)
                child = children[index]
                if colour[child] == grey:
                    return path[path.index(child) :]
                if colour[child] == white:
                    colour[child] = grey
                    stack.append((child, 0))
                    path.append(child)
            else:
                colour[node] = black
                stack.pop()
                path.pop()
    return None


def prerequisite_closure(graph: Mapping[str, Sequence[str]], skills: Iterable[str]) -> set[str]:
    """The given skills together with everything they (transitively) require."""
    seen: set[str] = set()
    todo = list(skills)
    while todo:
        skill = todo.pop()
        if skill in seen:
            continue
        seen.add(skill)
        todo.extend(graph.get(skill, ()))
    return seen


def topological_order(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Skills ordered so that every prerequisite comes before the skills needing it.

    Ties are broken by name so the order is stable across runs.
    """
    indegree = {node: 0 for node in graph}
    dependants: dict[str, list[str]] = {node: [] for node in graph}
    for node, prereqs in graph.items():
        for pre in prereqs:
            if pre in indegree:
                indegree[node] += 1
                dependants[pre].append(node)
    ready = sorted(n for n, d in indegree.items() if d == 0)
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for child in sorted(dependants[node]):
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
        ready.sort()
    if len(order) != len(graph):
        raise ValueError("prerequisite graph has a cycle")
    return order
