"""verify's result: every layer's predicted and measured shape, parameters, buffers and FLOPs, and the
table that shows them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerCheck:
    layer: str
    expected_shape: tuple
    actual_shape: tuple | None
    expected_params: int
    actual_params: int | None  # None: a functional step without a module
    expected_buffers: int
    actual_buffers: int | None
    expected_flops: int
    actual_flops: int | None

    @property
    def problems(self) -> list[str]:
        out = []
        if self.actual_shape != self.expected_shape:
            out.append(f"shape {_shape(self.actual_shape)} != predicted {_shape(self.expected_shape)}")
        pairs = (
            ("params", self.expected_params, self.actual_params),
            ("buffers", self.expected_buffers, self.actual_buffers),
            ("FLOPs", self.expected_flops, self.actual_flops),
        )
        for what, want, got in pairs:
            if got is None:
                got = 0 if what != "FLOPs" else None  # a functional step owns nothing; its FLOPs are in the total
            if got is not None and got != want:
                out.append(f"{what} {got:,} != predicted {want:,}")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Report:
    net: str
    sizes: dict
    layers: tuple  # LayerCheck
    totals: tuple  # (what, predicted, measured)

    @property
    def failures(self) -> list:
        return [c for c in self.layers if not c.ok]

    @property
    def total_failures(self) -> list:
        return [t for t in self.totals if t[1] != t[2]]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.total_failures


def _shape(shape) -> str:
    return "missing" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def sizes_text(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "fixed sizes"


def format_report(report: Report, everything: bool = False) -> str:
    """Every layer with `everything`, else only those that differ; the totals always."""
    sizes = sizes_text(report.sizes)
    head = ("layer", "shape", "params", "FLOPs", "")
    rows = []
    for c in report.layers:
        if not everything and c.ok:
            continue
        params = "" if c.actual_params is None and not c.expected_params else f"{c.expected_params:,}"
        flops = f"{c.expected_flops:,}" if c.expected_flops or c.actual_flops else ""
        rows.append((c.layer, _shape(c.expected_shape), params, flops, "ok" if c.ok else "; ".join(c.problems)))
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(4)]
    lines = [f"verify {report.net} at {sizes}", ""]
    if rows:
        for r in (head, *rows):
            cells = [str(r[i]).ljust(widths[i]) if i < 2 else str(r[i]).rjust(widths[i]) for i in range(4)]
            lines.append("  ".join(cells) + "  " + r[4])
        lines.append("")
    for what, want, got in report.totals:
        status = "ok" if want == got else f"MISMATCH: torch {got}"
        shown = f"{want:,}" if isinstance(want, int) else ", ".join(_shape(s) for s in want)
        lines.append(f"{what}: {shown} {status}")
    bad = len(report.failures) + len(report.total_failures)
    count = len(report.layers)
    lines.append(
        f"all {count} layers match the analysis" if not bad else f"{len(report.failures)} of {count} layer(s) differ"
    )
    return "\n".join(lines) + "\n"
