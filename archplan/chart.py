"""A per-layer chart of params and MACs (log scale, grouped by top-level block) and of the bytes each layer saves
for backward (archplan memory). matplotlib is optional."""

from __future__ import annotations

from . import dims
from .ops.base import family_colour

EDGE = "#555555"
CHART_FORMATS = ("png", "svg", "pdf")


class ChartUnavailable(Exception):
    """matplotlib is missing, or the figures cannot be made numbers."""


def _number(value, sizes: dict) -> float:
    number = dims.as_int(value)
    if number is not None:
        return float(number)
    try:
        return float(dims.at(value, {name: sizes.get(name, 1) for name in dims.symbol_names(value)}))
    except (AttributeError, TypeError, ValueError):
        raise ChartUnavailable(f"cannot evaluate {dims.to_str(value)} as a number; give sizes with --set") from None


def chart_sizes(result, values: dict | None = None) -> dict:
    """Sizes for symbols left free: given values, else declared defaults, else 1 (per sample)."""
    sizes = {name: info.default if info.default is not None else 1 for name, info in result.graph.symbols.items()}
    sizes.update(values or {})
    return sizes


def chart_data(result, values: dict | None = None) -> tuple[list, dict]:
    """[(layer, block, family, params, macs)] as floats for layers with any cost, and the sizes used."""
    sizes = chart_sizes(result, values)
    rows = []
    for row in result.layers:
        node = row.node
        block = node.scopes[0].path if node.scopes else ""
        params, macs = _number(row.params, sizes), _number(row.macs, sizes)
        if params or macs:  # free layers (relu, add, flatten) would only push the costly ones apart
            rows.append((node.name, block, node.op.family, params, macs))
    return rows, sizes


def memory_data(result, values: dict | None = None) -> list:
    """[(layer, block, family, bytes saved for backward)] for the layers that save something (archplan memory,
    default options), at the chart's sizes."""
    from .memory import plan

    sizes = chart_sizes(result, values)
    rows = []
    for layer in plan(result).layers:
        saved = _number(layer.saved, sizes)
        if saved:
            node = result.graph.nodes[layer.name]
            rows.append((layer.name, node.scopes[0].path if node.scopes else "", node.op.family, saved))
    return rows


def figure(result, values: dict | None = None):
    """The matplotlib Figure (Agg; nothing is shown)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        raise ChartUnavailable("the chart needs matplotlib: pip install 'archplan[chart]'") from None
    rows, sizes = chart_data(result, values)
    if not rows:
        raise ChartUnavailable("no analysed layers to chart")
    n = len(rows)
    saved = memory_data(result, values)
    width = min(max(8.0, 0.14 * max(n, len(saved)) + 2), 48.0)
    fig = Figure(figsize=(width, 11.0 if saved else 7.5), layout="constrained")
    axes = fig.subplots(3 if saved else 2, 1, gridspec_kw={"height_ratios": [1, 1, 1.2] if saved else [1, 1]})
    axes[0].sharex(axes[1])
    xs = range(n)
    colours = [family_colour(r[2]) for r in rows]
    for ax, column, title in ((axes[0], 3, "params"), (axes[1], 4, "MACs")):
        heights = [r[column] for r in rows]
        ax.bar(xs, [h if h > 0 else float("nan") for h in heights], color=colours, edgecolor=EDGE, linewidth=0.4)
        ax.set_yscale("log")
        ax.set_ylabel(title + " (log)")
        ax.grid(axis="y", which="major", alpha=0.3)
        _shade_blocks(ax, rows, label=ax is axes[0])
        for i in sorted(range(n), key=lambda i: -heights[i])[:3]:
            if heights[i] > 0:
                ax.annotate(_short(heights[i]), (i, heights[i]), ha="center", va="bottom", fontsize=7)
    fontsize = 7 if n <= 60 else 5
    axes[0].tick_params(labelbottom=False)
    axes[1].set_xticks(list(xs), [r[0] for r in rows], rotation=90, fontsize=fontsize)
    axes[1].set_xlim(-0.6, n - 0.4)
    if saved:
        _saved_panel(axes[2], saved)
    free = {k: v for k, v in sizes.items() if k in result.graph.symbols}
    at = (" at " + ", ".join(f"{k}={v}" for k, v in free.items())) if free else ""
    what = "params, MACs and bytes saved for backward" if saved else "params and MACs"
    fig.suptitle(f"{result.graph.name}: {what} per layer{at} (layers with none left out)")
    families = list(dict.fromkeys(r[2] for r in [*rows, *saved]))
    fig.legend(
        handles=[Patch(facecolor=family_colour(f), edgecolor=EDGE, label=f) for f in families],
        loc="outside lower center",
        ncol=len(families),
        fontsize=8,
    )
    return fig


def _saved_panel(ax, saved: list) -> None:
    """Bytes each layer saves for backward (a training step), in forward order, with the running total."""
    xs = range(len(saved))
    heights = [r[3] for r in saved]
    ax.bar(xs, heights, color=[family_colour(r[2]) for r in saved], edgecolor=EDGE, linewidth=0.4)
    ax.set_yscale("log")
    ax.set_ylabel("saved bytes (log)")
    ax.grid(axis="y", which="major", alpha=0.3)
    running, total = [], 0.0
    for h in heights:
        total += h
        running.append(total)
    twin = ax.twinx()
    twin.plot(list(xs), running, color="#333333", linewidth=1.0)
    twin.set_ylabel("running total (bytes)")
    ax.set_xticks(list(xs), [r[0] for r in saved], rotation=90, fontsize=7 if len(saved) <= 60 else 5)
    ax.set_xlim(-0.6, len(saved) - 0.4)
    for i in sorted(xs, key=lambda i: -heights[i])[:3]:
        ax.annotate(_short(heights[i]) + "B", (i, heights[i]), ha="center", va="bottom", fontsize=7)


def _shade_blocks(ax, rows, label: bool) -> None:
    """Alternate backgrounds per top-level block, named on the top axis."""
    start, shaded = 0, False
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i][1] != rows[start][1]:
            block = rows[start][1]
            if block:
                shaded = not shaded
                ax.axvspan(start - 0.5, i - 0.5, color="#000000", alpha=0.07 if shaded else 0.03, linewidth=0)
                if label:
                    ax.text(
                        (start + i - 1) / 2,
                        1.01,
                        block,
                        transform=ax.get_xaxis_transform(),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        clip_on=False,
                    )
            start = i


def _short(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"


def write_chart(result, path, values: dict | None = None, protected: tuple = ()) -> None:
    """Write the chart; the format follows the file's extension (png, svg, pdf). Raises ChartUnavailable or
    outputs.OutputError."""
    import io
    from pathlib import Path

    from .outputs import write_file

    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in CHART_FORMATS:
        raise ChartUnavailable(f"cannot tell the chart format from {path!s}: use a .png, .svg or .pdf file name")
    fig = figure(result, values)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format=fmt)
    write_file(path, buffer.getvalue(), protected)
