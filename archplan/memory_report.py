"""Formatting only: a MemoryPlan as a table, Markdown, or additions to the JSON contract of `archplan check`."""

from __future__ import annotations

import json

from . import dims
from .memory_devices import CONTEXT_RESERVE, DEFAULT_RESERVE, size_text
from .report import figure, md, to_json

COLUMNS = ("Layer", "Op", "Saved for backward", "Share")
INFERENCE_COLUMNS = ("Layer", "Op", "Output", "Live while it runs")


def bytes_text(value, plan=None, batch: int | None = None) -> str:
    """1.50 GiB; 96.38 KiB·N + 1.20 MiB for a polynomial in the batch; a formula in bytes otherwise. With `batch`
    (and the plan's probe values), the number."""
    if batch is not None and plan is not None:
        return size_text(plan.at(value, batch))
    number = dims.as_int(value)
    if number is not None:
        return size_text(number)
    if type(value).__name__ == "Batch" and len(value.coeffs) == 2:
        b, a = value.coeffs
        return _line_text(a, b, value.name)
    text = f"{dims.to_str(value)} B"
    if plan is not None and plan.probe:  # the size at the probe values of the other symbols
        b = plan.at(value, 0) if plan.batch else plan.at(value)
        a = plan.at(value, 1) - b if plan.batch else 0
        text += f" (= {_line_text(a, b, plan.batch)} at {', '.join(f'{k}={v}' for k, v in plan.probe.items())})"
    return text


def saved_text(value) -> str:
    """Short: 48.00 KiB·N, 1.50 MiB, or the formula (diagram labels)."""
    number = dims.as_int(value)
    if number is not None:
        return size_text(number) if number else "0"
    if type(value).__name__ == "Batch" and len(value.coeffs) == 2:
        return _line_text(value.coeffs[1], value.coeffs[0], value.name)
    return f"{dims.to_str(value)} B"


def _line_text(a: int, b: int, name: str | None) -> str:
    if not a:
        return size_text(b)
    return f"{size_text(a)}·{name}" + (f" + {size_text(b)}" if b else "")


def _compact(value, plan, batch: int | None) -> str:
    """A layer's figure: the number at --batch, else per batch element at the probe sizes (a formula in N)."""
    if batch is not None or not plan.probe or dims.as_int(value) is not None:
        return bytes_text(value, plan, batch)
    b = plan.at(value, 0) if plan.batch else plan.at(value)
    return _line_text(plan.at(value, 1) - b if plan.batch else 0, b, plan.batch)


def _share(part, whole, plan, batch: int | None) -> str:
    total = plan.at(whole, batch or 1)
    return f"{100 * plan.at(part, batch or 1) / total:.1f}%" if total else "-"


def layer_rows(result, plan, batch: int | None, inference: bool) -> list[tuple]:
    rows = {row.name: row for row in result.layers}
    out = []
    if inference:
        live = _live_per_layer(plan, batch)
        for layer in plan.layers:
            op = rows[layer.name].node.op.describe(rows[layer.name].node.args)
            out.append((layer.name, op, _compact(layer.output, plan, batch), live[layer.name]))
        return out
    whole = plan.totals["saved_activations"]
    for layer in plan.layers:
        row, saved = rows[layer.name], layer.saved
        shown = _compact(saved, plan, batch) if saved != 0 else "-"
        share = _share(saved, whole, plan, batch) if saved != 0 else ""
        out.append((layer.name, row.node.op.describe(row.node.args), shown, share))
    return out


def _live_per_layer(plan, batch: int | None) -> dict:
    """Live bytes at each layer's inference moment, at the batch (default 1)."""
    return {layer: size_text(value) for layer, value in plan.inference_live(batch or 1).items()}


def _peak_line(title: str, peak, plan, batch: int | None) -> list[str]:
    where = f"{peak.phase} at {peak.layer}" if peak.layer else peak.phase
    lines = [f"{title}: {bytes_text(peak.bytes, plan)} ({where})"]
    if len(peak.pieces) > 1:
        for start, end, nbytes, phase, layer in peak.pieces:
            span = f"{plan.batch} = {start}" + (f"..{end}" if end != start else "") if end is not None else None
            span = span or f"{plan.batch} >= {start}"
            lines.append(f"  {span}: {bytes_text(nbytes)} ({phase}{f' at {layer}' if layer else ''})")
    if type(peak.bytes).__name__ == "Batch":
        lines.append(f"  = {dims.to_str(peak.bytes)} bytes")
    if batch is not None:
        lines.append(f"  at {plan.batch}={batch}: {size_text(plan.peak_at(batch, peak is plan.inference))}")
    return lines


def summary_lines(result, plan, batch: int | None = None, device: int | None = None, inference: bool = False):
    t, o = plan.totals, plan.options
    lines = []
    if not inference:
        lines += [
            f"Weights: {bytes_text(t['weights'])} (fp32); buffers: {bytes_text(t['buffers'])}; "
            f"gradients: {bytes_text(t['gradients'])}; optimizer state ({o.optimizer}): "
            f"{bytes_text(t['optimizer_state'])}",
            f"Saved activations: {bytes_text(t['saved_activations'], plan)}"
            + (f" (the net's input: {bytes_text(t['saved_inputs'])})" if t["saved_inputs"] != 0 else "")
            + (f"; autocast weight copies: {bytes_text(t['weight_copies'])}" if t["weight_copies"] != 0 else ""),
        ]
        if batch is not None:
            lines.append(f"  at {plan.batch}={batch}: {size_text(plan.at(t['saved_activations'], batch))}")
        lines += _peak_line("Training peak", plan.training, plan, batch)
    else:
        lines.append(f"Weights: {bytes_text(t['weights'])} (fp32); buffers: {bytes_text(t['buffers'])}")
    lines += _peak_line("Inference peak (activations)", plan.inference, plan, batch)
    if plan.probe:
        lines.append("Peaks located at " + ", ".join(f"{k}={v}" for k, v in plan.probe.items()) + " (--set)")
    lines.append(_reserve_line(plan))
    if device is not None:
        lines.append(_fit_line(plan, device, inference))
    return lines + [f"note: {note}" for note in plan.notes]


def _reserve_line(plan) -> str:
    o = plan.options
    if o.reserve is not None:
        return f"Reserve: {size_text(o.reserve)} (--reserve)"
    if o.device == "cpu":
        return "Reserve: 0 B (cpu)"
    work = DEFAULT_RESERVE - CONTEXT_RESERVE
    return (
        f"Reserve: {size_text(DEFAULT_RESERVE)} (CUDA context {size_text(CONTEXT_RESERVE)}, cuDNN/cuBLAS workspaces "
        f"and allocator slack {size_text(work)}; --reserve)"
    )


def _fit_line(plan, device: int, inference: bool) -> str:
    n = plan.largest_batch(device, inference)
    what = "inference" if inference else "training"
    if n is None:
        peak = plan.at(plan.training.bytes) if not inference else plan.at(plan.inference.bytes)
        fits = "fits" if peak + plan.options.reserved <= device else "does not fit"
        return f"Device {size_text(device)}: the {what} step {fits} (the batch is not a symbol)"
    if n == 0:
        return f"Device {size_text(device)}: {what} does not fit even at {plan.batch} = 1"
    return f"Device {size_text(device)}: largest {what} batch {plan.batch} = {n:,}"


def table(result, plan, path: str = "", batch=None, device=None, inference: bool = False) -> str:
    columns = INFERENCE_COLUMNS if inference else COLUMNS
    body = layer_rows(result, plan, batch, inference)
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    aligns = ("<", "<", ">", ">")

    def fmt(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths)).rstrip()

    o = plan.options
    head = f"{result.graph.name or path}: {'inference' if inference else 'training'} memory"
    head += f" ({o.optimizer}, amp {o.amp}, {o.device})" if not inference else f" (amp {o.amp}, {o.device})"
    if plan.probe and batch is None:
        head += " at " + ", ".join(f"{k}={v}" for k, v in plan.probe.items())
    rule = "-" * len(fmt(columns))
    lines = [head, rule, fmt(columns), rule, *(fmt(r) for r in body), rule]
    return "\n".join(lines + summary_lines(result, plan, batch, device, inference)) + "\n"


def markdown(result, plan, path: str = "", batch=None, device=None, inference: bool = False) -> str:
    columns = INFERENCE_COLUMNS if inference else COLUMNS
    lines = [
        f"## {md(result.graph.name or path)}: memory",
        "",
        "| " + " | ".join(columns) + " |",
        "|---|---|---:|---:|",
    ]
    lines += ["| " + " | ".join(md(c) for c in r) + " |" for r in layer_rows(result, plan, batch, inference)]
    lines += ["", *(f"- {md(line.strip())}" for line in summary_lines(result, plan, batch, device, inference))]
    return "\n".join(lines) + "\n"


def _peak_json(peak) -> dict:
    return {
        "bytes": figure(peak.bytes),
        "phase": peak.phase,
        "layer": peak.layer,
        "parts": {label: figure(value) for label, value in peak.parts.items()},
        "pieces": [
            {"from": start, "to": end, "bytes": figure(nbytes), "phase": phase, "layer": layer}
            for start, end, nbytes, phase, layer in peak.pieces
        ],
    }


def memory_json(plan, batch=None, device=None, inference: bool = False) -> dict:
    t, o = plan.totals, plan.options
    out = {
        "optimizer": o.optimizer,
        "amp": o.amp,
        "device": o.device,
        "batch_symbol": plan.batch,
        "probe": dict(plan.probe),
        **{f"{key}_bytes": figure(value) for key, value in t.items()},
        "training_peak_bytes": figure(plan.training.bytes),
        "training_peak": _peak_json(plan.training),
        "inference_peak_bytes": figure(plan.inference.bytes),
        "inference_peak": _peak_json(plan.inference),
        "reserve_bytes": o.reserved,
        "ops_without_memory_rules": list(plan.unruled),
    }
    if batch is not None:
        out["batch"] = batch
        out["at_batch"] = {
            "saved_activations_bytes": plan.at(t["saved_activations"], batch),
            "training_peak_bytes": plan.peak_at(batch),
            "inference_peak_bytes": plan.peak_at(batch, inference=True),
        }
    if device is not None:
        out["device_memory_bytes"] = device
        out["largest_batch"] = plan.largest_batch(device, inference)
    return out


def to_json_with_memory(result, plan, batch=None, device=None, inference: bool = False) -> dict:
    """`archplan check`'s JSON, each layer with "saved_bytes", and a "memory" section."""
    out = to_json(result)
    saved = {layer.name: layer.saved for layer in plan.layers}
    for layer in out["layers"]:
        if layer["name"] in saved:
            layer["saved_bytes"] = figure(saved[layer["name"]])
    out["memory"] = memory_json(plan, batch, device, inference)
    return out


def render(result, plan, fmt: str, path: str = "", batch=None, device=None, inference: bool = False) -> str:
    if fmt == "json":
        return json.dumps(to_json_with_memory(result, plan, batch, device, inference), indent=2) + "\n"
    if fmt == "markdown":
        return markdown(result, plan, path, batch, device, inference)
    return table(result, plan, path, batch, device, inference)
