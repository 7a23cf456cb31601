"""IR + Analysis -> graphviz.Digraph: layers with shapes and costs, blocks as clusters, errors in red.

Pure: builds DOT source, runs nothing. Writing pictures (which needs a layout program) is in drawing.py.
Every text that reaches a label goes through `_esc`: names, arguments and messages come from users' YAML.
"""

from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass, field

from . import dims
from .ops.base import FAMILY_COLOURS, family_colour
from .memory_report import saved_text
from .report import amount, human, rf_text, shape_text

SHOW_CHOICES = ("params", "macs", "rf", "memory")  # memory: bytes saved for backward (archplan memory)
BLOCK_COLOUR = "#e0e0e0"
TERMINAL_COLOUR = "#4d4d4d"
ERROR_COLOUR, ERROR_FILL = "#d62728", "#f8d0d0"
SKIPPED_COLOUR = "#999999"
SMALL = 9  # point size of secondary label lines


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


TITLE_FORMULA = 48  # longer formulas stay in the layer labels and `archplan check`, not in the title


def title_amount(value, what: str) -> str:
    """'4.09G MACs', or 'MACs: a formula in H, N, W' when the formula is too long for a title."""
    text = amount(value)
    if len(text) <= TITLE_FORMULA:
        return f"{text} {what}"
    names = sorted(dims.symbol_names(value))
    return f"{what}: a formula in {', '.join(names)}"


def _sum(values):
    total = 0
    for v in values:
        total = total + v
    return dims.normalize(total) if not isinstance(total, int) else total


@dataclass
class _Item:
    """One drawn node: a layer, or a collapsed scope holding several layers."""

    key: str
    clusters: tuple  # paths of the enclosing drawn clusters, outermost first
    nodes: list = field(default_factory=list)
    scope: object = None  # the Scope when collapsed


@dataclass
class _Cluster:
    path: str
    children: dict = field(default_factory=dict)  # path -> _Cluster
    items: list = field(default_factory=list)


class _Builder:
    def __init__(self, result, depth: int | None, show, rankdir: str):
        self.result, self.graph = result, result.graph
        self.depth, self.show, self.rankdir = depth, frozenset(show), rankdir
        self.saved = _saved_bytes(result) if "memory" in self.show else {}
        self.rows = {row.name: row for row in result.layers}
        self.scopes = {}  # path -> [Scope, ...] (a use's args differ between repetitions)
        for node in self.graph.nodes.values():
            for scope in node.scopes:
                self.scopes.setdefault(scope.path, []).append(scope)
        self.node_errors, self.scope_errors, self.loose_errors = {}, {}, []
        for problem in result.errors:
            if problem.layer in self.graph.nodes:
                self.node_errors.setdefault(problem.layer, []).append(problem.message)
            elif problem.layer in self.scopes:
                self.scope_errors.setdefault(problem.layer, []).append(problem.message)
            else:
                self.loose_errors.append(problem)
        self.items, self.key_of = {}, {name: name for name in self.graph.inputs}
        for node in self.graph.nodes.values():
            cut = len(node.scopes) if depth is None else min(depth, len(node.scopes))
            scope = node.scopes[cut] if cut < len(node.scopes) else None
            key = scope.path if scope else node.name
            item = self.items.setdefault(key, _Item(key, tuple(s.path for s in node.scopes[:cut]), scope=scope))
            item.nodes.append(node)
            self.key_of[node.name] = key

    # -- the whole picture ---------------------------------------------------------------------------
    def build(self):
        import graphviz

        dot = graphviz.Digraph(
            re.sub(r"\W", "_", self.graph.name) or "net",
            graph_attr={
                "rankdir": self.rankdir,
                "fontname": "Helvetica",
                "labelloc": "t",
                "nodesep": "0.3",
                "ranksep": "0.35",
                "label": self._legend(),
            },
            node_attr={
                "shape": "box",
                "style": "rounded,filled",
                "fontname": "Helvetica",
                "fontsize": "11",
                "margin": "0.12,0.04",
            },
            edge_attr={
                "fontname": "Helvetica",
                "fontsize": str(SMALL),
                "fontcolor": "#555555",
                "color": "#555555",
                "arrowsize": "0.7",
            },
        )
        for name, shape in self.graph.inputs.items():
            dot.node(
                name,
                f"<<B>{_esc(name)}</B><BR/>{_esc(shape_text(shape))}>",
                fillcolor=TERMINAL_COLOUR,
                fontcolor="white",
                shape="oval",
                tooltip=f"input {name}",
            )
        root = _Cluster("")
        for item in self.items.values():
            cluster = root
            for path in item.clusters:
                cluster = cluster.children.setdefault(path, _Cluster(path))
            cluster.items.append(item)
        self._emit(dot, root)
        self._edges(dot)
        self._outputs(dot)
        return dot

    def _emit(self, graph, cluster: _Cluster) -> None:
        for item in cluster.items:
            if item.scope is None:
                self._layer(graph, item.nodes[0], local=bool(item.clusters))
            else:
                self._collapsed(graph, item)
        for child in cluster.children.values():
            errors = self.scope_errors.get(child.path, [])
            attrs = {
                "label": self._scope_label(child.path, errors),
                "style": "rounded,filled",
                "fillcolor": "#f7f7f7" if child.path.count(".") % 2 == 0 else "#ececec",
                "color": ERROR_COLOUR if errors else "#999999",
                "fontsize": "11",
                "penwidth": "2" if errors else "1",
                "labeljust": "l",
            }
            with graph.subgraph(name="cluster_" + child.path, graph_attr=attrs) as sub:
                self._emit(sub, child)

    # -- labels --------------------------------------------------------------------------------------
    def _scope_args(self, path: str, index_only: bool) -> str:
        """Block arguments for a label: on a use those shared by all repetitions, on a repetition the rest."""
        scopes = self.scopes[path]
        common = set(scopes[0].args).intersection(*(set(s.args) for s in scopes[1:]))
        if index_only:
            parent = path.rsplit(".", 1)[0]
            shared = set(self.scopes[parent][0].args).intersection(*(set(s.args) for s in self.scopes[parent]))
            common -= shared
        return ", ".join(f"{k}={v}" for k, v in scopes[0].args if (k, v) in common)

    def _scope_title(self, path: str) -> str:
        scope = self.scopes[path][0]
        args = self._scope_args(path, scope.index is not None)
        times = f" x{scope.repeat}" if scope.repeat else ""
        return f"{path}: {scope.block}{times}" + (f" ({args})" if args else "")

    def _scope_label(self, path: str, errors: list) -> str:
        return f"<<B>{_esc(self._scope_title(path))}</B>{self._error_lines(errors)}>"

    def _error_lines(self, messages, sep: str = "<BR/>") -> str:
        lines = [line for m in messages for line in textwrap.wrap(m, 48, break_on_hyphens=False)]
        return (
            sep + "<BR/>".join(f'<FONT COLOR="{ERROR_COLOUR}" POINT-SIZE="{SMALL}">{_esc(t)}</FONT>' for t in lines)
            if lines
            else ""
        )

    def _costs(self, rows, show) -> str:
        parts = []
        if "params" in show:
            parts.append(
                "params "
                + (human(_sum(r.params for r in rows)) if len(rows) == 1 else amount(_sum(r.params for r in rows)))
            )
        if "macs" in show:
            parts.append("MACs " + amount(_sum(r.macs for r in rows)))
        if "rf" in show and len(rows) == 1 and rf_text(rows[0].field) != "-":
            parts.append("RF " + rf_text(rows[0].field))
        if "memory" in show:
            parts.append("saved " + saved_text(_sum(self.saved.get(r.name, 0) for r in rows)))
        return f'<BR/><FONT POINT-SIZE="{SMALL}">{_esc(" · ".join(parts))}</FONT>' if parts else ""

    def _shape_line(self, text: str, colour: str = "#333333") -> str:
        return f'<BR/><FONT POINT-SIZE="{SMALL}" COLOR="{colour}">{_esc(text)}</FONT>'

    def _layer(self, graph, node, local: bool) -> None:
        row, errors = self.rows.get(node.name), self.node_errors.get(node.name, [])
        name = node.local_name if local else node.name
        label = f"<B>{_esc(name)}</B><BR/>{_esc(node.op.describe(node.args))}"
        attrs = {"fillcolor": family_colour(node.op.family), "tooltip": node.name}
        if row is not None:
            label += self._shape_line(shape_text(row.output_shape)) + self._costs([row], self.show)
        elif errors:
            label += self._error_lines(errors)
            attrs.update(fillcolor=ERROR_FILL, color=ERROR_COLOUR, penwidth="2.5")
        else:
            label += self._shape_line("not analysed: an input failed", SKIPPED_COLOUR)
            attrs.update(style="rounded,dashed", color=SKIPPED_COLOUR, fontcolor=SKIPPED_COLOUR)
        graph.node(node.name, f"<{label}>", **attrs)

    def _collapsed(self, graph, item: _Item) -> None:
        rows = [self.rows[n.name] for n in item.nodes if n.name in self.rows]
        errors = [m for n in item.nodes for m in self.node_errors.get(n.name, [])]
        errors += [
            m
            for path, ms in self.scope_errors.items()
            if path == item.key or path.startswith(item.key + ".")
            for m in ms
        ]
        title = self._scope_title(item.key)
        label = f"<B>{_esc(title.split(': ', 1)[0])}</B><BR/>{_esc(title.split(': ', 1)[1])}"
        outs = [self.rows[n].output_shape for n in self._exits(item) if n in self.rows]
        if outs:
            label += self._shape_line(" ".join(dict.fromkeys(shape_text(s) for s in outs)))
        attrs = {
            "shape": "box3d",
            "style": "filled",
            "fillcolor": BLOCK_COLOUR,
            "tooltip": item.key,
            "margin": "0.15,0.16",
        }
        if rows:
            label += self._costs(rows, self.show | {"params", "macs"})
        elif not errors:
            label += self._shape_line("not analysed: an input failed", SKIPPED_COLOUR)
            attrs.update(style="dashed", color=SKIPPED_COLOUR, fontcolor=SKIPPED_COLOUR)
        label += self._error_lines(errors)
        if errors:
            attrs.update(fillcolor=ERROR_FILL, color=ERROR_COLOUR, penwidth="2.5")
        graph.node(item.key, f"<{label}>", **attrs)

    def _exits(self, item: _Item) -> list:
        """Layers of a collapsed scope whose outputs leave it."""
        inside = {n.name for n in item.nodes}
        used = {s for node in self.graph.nodes.values() if node.name not in inside for s in node.inputs}
        return [n.name for n in item.nodes if n.name in used or n.name in self.graph.outputs]

    def _legend(self) -> str:
        families = list(dict.fromkeys(n.op.family for n in self.graph.nodes.values()))
        cells = [
            f'<TD BGCOLOR="{family_colour(f)}">{_esc(f)}</TD>'
            for f in sorted(families, key=lambda f: list(FAMILY_COLOURS).index(f) if f in FAMILY_COLOURS else 99)
        ]
        if any(i.scope is not None for i in self.items.values()):
            cells.append(f'<TD BGCOLOR="{BLOCK_COLOUR}">block</TD>')
        if self.result.errors:
            cells.append(f'<TD BGCOLOR="{ERROR_FILL}"><FONT COLOR="{ERROR_COLOUR}">error</FONT></TD>')
        totals = self.result.totals
        head = (
            f"{_esc(self.graph.name)}: {_esc(title_amount(totals.get('params', 0), 'params'))}, "
            f"{_esc(title_amount(totals.get('macs', 0), 'MACs'))}"
        )
        span = f'<TR><TD COLSPAN="{max(len(cells), 1)}" BORDER="0">'
        rows = [f"{span}<B>{head}</B></TD></TR>", "<TR>" + "".join(cells) + "</TR>"]
        for problem in self.loose_errors:  # errors of layers that are not drawn
            text = (f"{problem.layer}: " if problem.layer else "") + problem.message
            rows.append(f"{span}{self._error_lines([text], sep='')}</TD></TR>")
        return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="3" CELLPADDING="3">' + "".join(rows) + "</TABLE>>"

    # -- edges ---------------------------------------------------------------------------------------
    def _shape_of(self, name: str):
        if name in self.graph.inputs:
            return self.graph.inputs[name]
        row = self.rows.get(name)
        return row.output_shape if row is not None else None

    def _edges(self, dot) -> None:
        seen = set()
        for node in self.graph.nodes.values():
            target = self.key_of[node.name]
            for source in node.inputs:
                origin = self.key_of.get(source, source)
                if origin == target or (origin, source, target) in seen:
                    continue
                seen.add((origin, source, target))
                shape = self._shape_of(source)
                attrs = {"label": f"<{_esc(shape_text(shape) if shape is not None else '?')}>"}
                if node.name in self.node_errors and node.name not in self.rows:
                    attrs.update(color=ERROR_COLOUR, fontcolor=ERROR_COLOUR, penwidth="2")
                dot.edge(origin, target, **attrs)
            owner = self.key_of.get(node.tied) if node.tied else None
            if owner is not None and owner != target:  # a shared weight: dashed, not a data path
                dot.edge(owner, target, label="<shared weight>", style="dashed", constraint="false")

    def _outputs(self, dot) -> None:
        for name in self.graph.outputs:
            shape = self._shape_of(name)
            text = shape_text(shape) if shape is not None else "?"
            terminal = f"output {name}"
            dot.node(
                terminal,
                f"<<B>output</B><BR/>{_esc(text)}>",
                shape="oval",
                fillcolor=TERMINAL_COLOUR,
                fontcolor="white",
                tooltip=f"output {name}",
            )
            dot.edge(self.key_of.get(name, name), terminal)


def _saved_bytes(result) -> dict:
    """Layer -> bytes autograd saves for it in a training step (archplan/memory.py, default options)."""
    from .memory import plan

    return {layer.name: layer.saved for layer in plan(result).layers}


def build(result, depth: int | None = None, show=(), rankdir: str = "TB"):
    """The diagram of an analysed net as a graphviz.Digraph (DOT source; nothing is run).

    depth: None draws every layer with blocks as clusters; K collapses scopes nested deeper than K
    (0: each top-level block use, with its whole repeat run, becomes one node). show: any of
    SHOW_CHOICES, extra figures on layer nodes (collapsed nodes always carry params and MACs).
    """
    unknown = set(show) - set(SHOW_CHOICES)
    if unknown:
        raise ValueError(f"show: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SHOW_CHOICES)}")
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir: expected TB or LR, received {rankdir!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth: expected 0 or more, received {depth}")
    return _Builder(result, depth, show, rankdir).build()


def node_count(dot) -> int:
    """Nodes declared in DOT source (for tests and the acceptance check)."""
    names = re.findall(r'^\t+("(?:[^"\\]|\\.)*"|[\w.]+) \[', dot.source, re.M)
    return len([n for n in names if n not in ("graph", "node", "edge")])
