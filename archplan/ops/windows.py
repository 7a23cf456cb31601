"""Sliding-window arithmetic shared by convolutions and pooling (1-D, 2-D and 3-D alike)."""

from __future__ import annotations

from typing import Any

from .. import dims
from ..errors import RuleError


def effective_kernel(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def pad_pair(padding: Any, axis: int, size: Any, kernel: int, stride: int, dilation: int) -> tuple:
    """(before, after) padding along one axis for an int tuple or a named mode.

    `same` follows TensorFlow for any stride: output = ceil(size / stride), the extra pad at the end
    when the total is odd (PyTorch's padding='same' does the same for stride 1).
    """
    k_eff = effective_kernel(kernel, dilation)
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return k_eff - 1, k_eff - 1
    if padding == "same":
        if stride == 1:
            total = k_eff - 1
        else:
            total = dims.dmax((dims.ceildiv(size, stride) - 1) * stride + k_eff - size, 0)
        before = dims.floordiv(total, 2)
        return before, total - before
    return padding[axis], padding[axis]


def window_out(
    size: Any, kernel: int, stride: int, before: Any, after: Any, dilation: int = 1, ceil_mode: bool = False
) -> Any:
    """Output length of a sliding window; ceil_mode follows PyTorch (the last window must start
    inside the input or the left padding)."""
    span = size + before + after - effective_kernel(kernel, dilation)
    if not ceil_mode:
        return dims.floordiv(span, stride) + 1
    ceil_count = dims.ceildiv(span, stride)
    if isinstance(before, int) and before + stride <= effective_kernel(kernel, dilation):
        return ceil_count + 1  # the correction can never apply
    return dims.dmin(ceil_count, dims.floordiv(size + before - 1, stride)) + 1


def same_output(size: Any, stride: int) -> Any:
    return dims.ceildiv(size, stride)


def border_loss(size: Any, kernel: int, stride: int, before: Any, after: Any, dilation: int = 1) -> Any:
    """Input pixels at the far end that no window reads (only when windows tile, kernel >= stride)."""
    k_eff = effective_kernel(kernel, dilation)
    if k_eff < stride or stride == 1:
        return 0  # gaps between windows are by design; a stride of 1 reads every position
    rest = dims.mod(size + before + after - k_eff, stride)
    if isinstance(rest, int) and isinstance(after, int):
        return max(rest - after, 0)
    if isinstance(after, int) and after <= 0:
        return rest - after  # a remainder is never negative: no Max to build (sympy's is costly)
    return dims.dmax(rest - after, 0)


def check_pool_padding(padding: tuple, kernel: tuple) -> None:
    for axis, p in enumerate(padding):
        if 2 * p > kernel[axis]:  # torch compares with the undilated kernel
            raise RuleError(
                f"padding {p} is more than half the kernel size {kernel[axis]}",
                hint="PyTorch requires pad <= kernel_size / 2 for pooling",
            )


def spatial(shape: tuple) -> tuple:
    return tuple(shape[2:])


def compact(values: tuple) -> Any:
    """(3, 3) -> 3 for readable generated code and labels."""
    return values[0] if len(set(values)) == 1 else values


def times(values: tuple) -> str:
    return "x".join(str(v) for v in values)
