"""How deep block uses nest, found without recursion: everything that expands, lowers, draws or prints a
net walks block uses recursively, so a net whose uses nest deeper than MAX_BLOCK_DEPTH is refused here."""

from __future__ import annotations

from ..errors import Problem
from .model import BlockSpec

MAX_BLOCK_DEPTH = 64  # nested block uses (ResNet, U-Net and EfficientNet nest 2 or 3 deep)


def nesting_problems(blocks: dict, layers: tuple) -> list[Problem]:
    """One problem when a chain of block uses nests deeper than MAX_BLOCK_DEPTH (the chain that starts at a
    net layer if one does, else at a block definition); a use of a block inside itself is left to lowering,
    which names the cycle."""
    depth = _depths(blocks)
    deep = [(depth[s.block], s) for s in layers if s.block in depth and depth[s.block] > MAX_BLOCK_DEPTH]
    if deep:
        levels, use = max(deep, key=lambda d: d[0])
        chain, pos, layer = _chain(blocks, depth, use.block), use.pos, use.name
    else:
        found = [(d, name) for name, d in depth.items() if d > MAX_BLOCK_DEPTH]
        if not found:
            return []
        levels, name = max(found)
        chain, pos, layer = _chain(blocks, depth, name), blocks[name].pos, None
    return [
        Problem(
            f"block uses nest {levels:,} deep ({chain}); at most {MAX_BLOCK_DEPTH} levels are supported",
            layer=layer,
            line=pos.line,
            column=pos.column,
        )
    ]


def _used(block: BlockSpec, blocks: dict) -> list:
    return [s.block for s in block.layers if s.block in blocks]


def _depths(blocks: dict) -> dict:
    """Block -> the most blocks a chain of nested uses passes through, itself included (1: no uses). A use
    that closes a cycle counts 0."""
    depth: dict = {}
    for root in blocks:
        if root in depth:
            continue
        stack, open_ = [(root, iter(_used(blocks[root], blocks)))], {root}
        while stack:
            name, children = stack[-1]
            child = next((b for b in children if b not in depth and b not in open_), None)
            if child is not None:
                open_.add(child)
                stack.append((child, iter(_used(blocks[child], blocks))))
                continue
            depth[name] = 1 + max((depth.get(b, 0) for b in set(_used(blocks[name], blocks))), default=0)
            open_.discard(name)
            stack.pop()
    return depth


def _chain(blocks: dict, depth: dict, start: str) -> str:
    """The first blocks of the deepest chain from `start`: 'a -> b -> c -> ...'."""
    names = [start]
    while len(names) < 4:
        inner = [b for b in _used(blocks[names[-1]], blocks) if depth.get(b, 0) == depth[names[-1]] - 1]
        if not inner:
            break
        names.append(inner[0])
    return " -> ".join(names) + (" -> ..." if depth[start] > len(names) else "")
