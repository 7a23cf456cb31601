"""Device sizes and byte amounts for `archplan memory`: parsing `80GiB` / `a100-40gb`, the reserve, formatting.

Device sizes are the total memory the driver reports (NVML, as `nvidia-smi` shows it), which is what
`torch.cuda.mem_get_info()` starts from: a card sold as "80 GB" may hold 81,559 MiB (H100) or 81,920 MiB
(A100 80GB).

The reserve is what a CUDA training process holds besides the tensors the planner counts (DEFAULT_RESERVE,
1 GiB in all; `--reserve` overrides it):
- the CUDA context (kernels of torch, cuDNN and cuBLAS): about 0.5 GiB with CUDA 12's lazy module loading
  (CONTEXT_RESERVE); `torch.cuda.mem_get_info()` is called after the context exists, so the generated train.py
  leaves this part out;
- cuDNN convolution workspaces (benchmark mode tries algorithms that ask for hundreds of MiB), cuBLAS's
  workspace (up to 32 MiB per stream on Hopper) and the caching allocator's rounding (blocks are multiples of
  512 B carved from 2 MiB or 20 MiB segments): WORKSPACE_RESERVE, 0.5 GiB.
On the CPU the reserve is 0: host memory has no context, and oneDNN workspaces are freed inside the kernels.
"""

from __future__ import annotations

import re

MIB, GIB = 2**20, 2**30
CONTEXT_RESERVE = 512 * MIB
WORKSPACE_RESERVE = 512 * MIB
DEFAULT_RESERVE = CONTEXT_RESERVE + WORKSPACE_RESERVE

# name -> total bytes as NVML reports them
DEVICES = {
    "h200": 143_771 * MIB,
    "h100-80gb": 81_559 * MIB,
    "a100-80gb": 81_920 * MIB,
    "a100-40gb": 40_960 * MIB,
    "l40s": 46_068 * MIB,
    "a10": 23_028 * MIB,
    "l4": 23_034 * MIB,
    "rtx4090": 24_564 * MIB,
    "rtx3090": 24_576 * MIB,
    "t4": 15_360 * MIB,
}

UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": MIB,
    "gib": GIB,
    "tib": 2**40,
}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_bytes(text: str) -> int:
    """'80GiB', '40GB' (decimal), '512MiB', '1e9' or '1000000' bytes, or a device name from DEVICES.
    Raises ValueError with a message that says what is accepted."""
    key = text.strip().lower()
    if key in DEVICES:
        return DEVICES[key]
    match = _AMOUNT.match(key)
    if match is None:
        try:
            value = float(key)
        except ValueError:
            value = None
        if value is None or value != value or value < 0 or value == float("inf"):
            raise ValueError(
                f"expected an amount such as 80GiB, 40GB or 512MiB, or a device ({', '.join(DEVICES)}); "
                f"received {text!r}"
            )
        return int(value)
    number, unit = match.groups()
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r} in {text!r}: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB")
    return int(float(number) * UNITS[unit])


def size_text(number: int) -> str:
    """A byte count for people: 1.50 GiB, 12.0 MiB, 640 B."""
    sign = "-" if number < 0 else ""
    number = abs(number)
    for unit, scale in (("TiB", 2**40), ("GiB", GIB), ("MiB", MIB), ("KiB", 2**10)):
        if number >= scale:
            return f"{sign}{number / scale:.2f} {unit}"
    return f"{sign}{number} B"
