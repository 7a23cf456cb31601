"""Structure checks: located YAML values -> NetSpec, collecting every problem."""

from __future__ import annotations

import difflib
import heapq
import keyword

from ..errors import Problem
from ..show import shown
from . import located
from .nesting import nesting_problems
from .model import REQUIRED, Arg, BlockSpec, InputSpec, LayerSpec, NetSpec, Pos, SymbolSpec
from .train import parse_train

FORMAT_VERSION = 1
TOP_KEYS = ("archplan", "name", "description", "symbols", "inputs", "blocks", "layers", "outputs", "train")
LAYER_KEYS = ("name", "op", "block", "in", "args", "repeat", "first", "when", "weight")
BLOCK_KEYS = ("args", "inputs", "output", "layers", "description")
SYMBOL_KEYS = ("min", "max", "default")
INPUT_KEYS = ("shape", "dtype", "range", "positions")
INTEGER_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool")
DTYPES = ("float32", "float16", "bfloat16", "float64", *INTEGER_DTYPES)
# attributes of torch.nn.Module that a submodule name must not shadow in generated code
# attributes of torch.nn.Module (torch 2.x) that a submodule name would shadow in generated code; names starting
# with an underscore are refused too (_modules, _parameters, _version and the private API live there)
MODULE_ATTRIBUTES = frozenset(
    "T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches "
    "eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu "
    "load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters "
    "register_backward_hook register_buffer register_forward_hook register_forward_pre_hook "
    "register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook "
    "register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook "
    "register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to "
    "to_empty train training type xpu zero_grad".split()
)


def reserved_reason(name: str) -> str | None:
    """Why a layer name cannot be a submodule attribute, or None."""
    if name.startswith("_"):
        return "names starting with an underscore are torch.nn.Module's private attributes (_modules, _version, ...)"
    if name in MODULE_ATTRIBUTES:
        return f"torch.nn.Module has an attribute {name!r}; a submodule of that name would replace it"
    return None


MAX_NAME_LENGTH = 100  # layer, block, symbol, input and argument names
MAX_REFERENCE_LENGTH = 300  # `in:` and `outputs:` references, dotted into blocks
MAX_SUGGESTION_CHOICES = 300  # beyond this a scope is too large for a cheap "did you mean"
_SHORTLIST = 8


def suggest(word: str, choices) -> str | None:
    """'did you mean ...?' for a misspelt name, in bounded time: no suggestion for long words or scopes
    of more than MAX_SUGGESTION_CHOICES names; difflib only compares the few names sharing most letters."""
    if not isinstance(word, str) or not word or len(word) > MAX_REFERENCE_LENGTH:
        return None
    names = []
    for choice in choices:
        if len(names) >= MAX_SUGGESTION_CHOICES:
            return None
        if isinstance(choice, str) and len(choice) <= MAX_REFERENCE_LENGTH:
            names.append(choice)
    letters = set(word)
    shortlist = heapq.nlargest(_SHORTLIST, names, key=lambda c: len(letters.intersection(c)) / (len(c) + len(word)))
    match = difflib.get_close_matches(word, shortlist, n=1, cutoff=0.6)
    return f"did you mean {shown(match[0])}?" if match else None


def check_identifier(name, what: str, pos: Pos, problems: list, layer: str | None = None) -> bool:
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        problems.append(
            Problem(
                f"{what} must be at most {MAX_NAME_LENGTH} characters, received {shown(name)}",
                layer=layer,
                line=pos.line,
                column=pos.column,
            )
        )
        return False
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        problems.append(
            Problem(
                f"{what} must be a Python identifier (letters, digits, _), received {shown(name)}",
                layer=layer,
                line=pos.line,
                column=pos.column,
            )
        )
        return False
    return True


class _Parser:
    def __init__(self, path: str):
        self.path = path
        self.problems: list[Problem] = []

    def error(self, message: str, pos: Pos, layer: str | None = None, hint: str | None = None) -> None:
        self.problems.append(Problem(message, layer=layer, line=pos.line, column=pos.column, hint=hint))

    def pos(self, container, key) -> Pos:
        if isinstance(container, located.LMap):
            return Pos(*container.value_where(key))
        if isinstance(container, located.LList):
            return Pos(*container.where(key))
        return Pos()

    def key_pos(self, container, key) -> Pos:
        return Pos(*container.where(key)) if isinstance(container, located.LMap) else Pos()

    def check_keys(self, mapping, allowed, what: str, layer: str | None = None) -> None:
        for key in mapping:
            if key not in allowed:
                self.error(
                    f"unknown key {shown(key)} in {what}; expected one of: {', '.join(allowed)}",
                    self.key_pos(mapping, key),
                    layer,
                    suggest(key, allowed),
                )

    def net(self, doc) -> NetSpec | None:
        here = Pos(getattr(doc, "line", None), getattr(doc, "column", None))
        if not isinstance(doc, dict):
            self.error(f"expected a mapping at the top level, received {shown(doc)}", here)
            return None
        self.check_keys(doc, TOP_KEYS, "the net")
        for key in ("archplan", "name", "inputs", "layers"):
            if key not in doc:
                self.error(f"missing required key {key!r}", here)
        version = doc.get("archplan", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            self.error(
                f"unsupported format version: expected archplan: {FORMAT_VERSION}, received {shown(version)}",
                self.pos(doc, "archplan"),
            )
        name = doc.get("name", "net")
        check_identifier(name, "name", self.pos(doc, "name"), self.problems)
        description = doc.get("description") or ""
        if not isinstance(description, str):
            self.error(f"description must be text, received {shown(description)}", self.pos(doc, "description"))
            description = ""
        symbols = self.symbols(doc.get("symbols") or {}, self.pos(doc, "symbols"))
        inputs = self.inputs(doc.get("inputs") or {}, self.pos(doc, "inputs"))
        blocks = self.blocks(doc.get("blocks") or {}, self.pos(doc, "blocks"))
        layers = self.layers(doc.get("layers"), self.pos(doc, "layers"), None)
        too_deep = nesting_problems(blocks, layers)
        if too_deep:  # nothing that walks block uses may see this net
            self.problems.extend(too_deep)
            return None
        outputs = self.names(doc.get("outputs"), self.pos(doc, "outputs"), "outputs")
        raw_train = doc.get("train") or {}
        train, train_problems = parse_train(raw_train, self.pos(doc, "train"))
        train_where = {k: raw_train.value_where(k) for k in raw_train} if hasattr(raw_train, "value_where") else {}
        self.problems.extend(train_problems)
        return NetSpec(
            name=name if isinstance(name, str) and len(name) <= MAX_NAME_LENGTH else "net",
            description=description,
            symbols=symbols,
            inputs=inputs,
            blocks=blocks,
            layers=layers,
            outputs=outputs,
            train=train,
            path=self.path,
            train_where=train_where,
            outputs_pos=self.pos(doc, "outputs"),
        )

    def symbols(self, raw, pos: Pos) -> dict:
        if not isinstance(raw, dict):
            self.error("symbols must be a mapping of name -> {min, max, default}", pos)
            return {}
        out = {}
        for name, spec in raw.items():
            where = self.key_pos(raw, name)
            if not check_identifier(name, "a symbol name", where, self.problems):
                continue
            spec = spec if spec is not None else {}
            if not isinstance(spec, dict):
                self.error(
                    f"symbol {name}: expected a mapping such as {{min: 32, default: 224}}, received {shown(spec)}",
                    where,
                )
                continue
            self.check_keys(spec, SYMBOL_KEYS, f"symbol {name}")
            values = {}
            for key in SYMBOL_KEYS:
                value = spec.get(key)
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                    self.error(
                        f"symbol {name}: {key} must be a positive integer, received {shown(value)}",
                        self.pos(spec, key),
                    )
                    value = None
                values[key] = value
            low, high, default = values["min"], values["max"], values["default"]
            if low is not None and high is not None and low > high:
                self.error(f"symbol {name}: min {low} is larger than max {high}", where)
            if default is not None and ((low is not None and default < low) or (high is not None and default > high)):
                self.error(f"symbol {name}: default {default} is outside [{low}, {high}]", self.pos(spec, "default"))
            out[name] = SymbolSpec(name, low, high, default, where)
        return out

    def inputs(self, raw, pos: Pos) -> dict:
        if not isinstance(raw, dict) or not raw:
            self.error("inputs must map each input name to its shape, e.g. image: [N, 3, H, W]", pos)
            return {}
        out = {}
        for name, shape in raw.items():
            where = self.key_pos(raw, name)
            if not check_identifier(name, "an input name", where, self.problems):
                continue
            dtype, value_range, positions = "float", None, None
            if isinstance(shape, dict):  # {shape: [N, L], dtype: int64, range: 50257}
                self.check_keys(shape, INPUT_KEYS, f"input {name}")
                dtype, value_range = self.input_type(name, shape)
                spec, shape = shape, shape.get("shape")
                if isinstance(shape, list) and shape and "positions" in spec:
                    positions = self.input_positions(name, spec, len(shape))
            if not isinstance(shape, list) or not shape:
                self.error(f"input {name}: expected a shape list such as [N, 3, H, W], received {shown(shape)}", where)
                continue
            for i, entry in enumerate(shape):
                if isinstance(entry, bool) or not isinstance(entry, (int, str)):
                    self.error(
                        f"input {name}: entry {i} must be an integer, a symbol or an expression, "
                        f"received {shown(entry)}",
                        self.pos(shape, i),
                    )
            out[name] = InputSpec(name, tuple(shape), where, dtype, value_range, positions)
        return out

    def input_positions(self, name: str, spec, rank: int) -> tuple | None:
        """`positions: [1]`: the dims that are positions (sequence steps, pixels), as non-negative indices;
        dim 0 is the batch. None (the dtype's convention) after an error."""
        raw, where = spec.get("positions"), self.pos(spec, "positions")
        expected = f"a list of the dims that are positions (1 to {rank - 1}, or negative from the end)"
        if not isinstance(raw, list) or any(isinstance(d, bool) or not isinstance(d, int) for d in raw):
            self.error(f"input {name}: positions must be {expected}, received {shown(raw)}", where)
            return None
        dims = [d + rank if d < 0 else d for d in raw]
        bad = [raw[i] for i, d in enumerate(dims) if not 1 <= d < rank]
        if bad or len(set(dims)) != len(dims):
            what = f"dim {bad[0]} is not one of them" if bad else "a dim is listed twice"
            self.error(f"input {name}: positions must be {expected}; {what}, received {shown(raw)}", where)
            return None
        return tuple(sorted(dims))

    def input_type(self, name: str, spec) -> tuple:
        dtype = spec.get("dtype", "float32")
        if dtype not in DTYPES:
            self.error(
                f"input {name}: dtype must be one of {', '.join(DTYPES)}, received {shown(dtype)}",
                self.pos(spec, "dtype"),
                hint=suggest(str(dtype), DTYPES),
            )
            dtype = "float32"
        value_range = spec.get("range")
        if value_range is not None:
            if dtype not in INTEGER_DTYPES:
                self.error(
                    f"input {name}: range applies to integer inputs (token ids), not {dtype}", self.pos(spec, "range")
                )
            elif isinstance(value_range, bool) or not isinstance(value_range, (int, str)):
                self.error(
                    f"input {name}: range must be a positive integer or expression, received {shown(value_range)}",
                    self.pos(spec, "range"),
                )
                value_range = None
        return ("float" if dtype == "float32" else dtype), value_range

    def blocks(self, raw, pos: Pos) -> dict:
        if not isinstance(raw, dict):
            self.error("blocks must map each block name to {args, layers}", pos)
            return {}
        out = {}
        for name, body in raw.items():
            where = self.key_pos(raw, name)
            if not check_identifier(name, "a block name", where, self.problems):
                continue
            if not isinstance(body, dict):
                self.error(f"block {name}: expected a mapping with args and layers", where)
                continue
            self.check_keys(body, BLOCK_KEYS, f"block {name}")
            args = body.get("args") or {}
            if not isinstance(args, dict):
                self.error(
                    f"block {name}: args must be a mapping of name -> default (null = required)", self.pos(body, "args")
                )
                args = {}
            for arg in args:
                check_identifier(arg, f"block {name}: argument name", self.key_pos(args, arg), self.problems)
            inputs = self.names(body.get("inputs", ["input"]), self.pos(body, "inputs"), f"block {name}: inputs")
            self.check_size_names(name, args, inputs or ("input",))
            output = body.get("output")
            if output is not None and (not isinstance(output, str) or len(output) > MAX_REFERENCE_LENGTH):
                self.error(
                    f"block {name}: output must be a layer name, received {shown(output)}", self.pos(body, "output")
                )
                output = None
            layers = self.layers(body.get("layers"), self.pos(body, "layers") if "layers" in body else where, name)
            defaults = {k: (REQUIRED if v is None else v) for k, v in args.items()}
            out[name] = BlockSpec(name, defaults, inputs or ("input",), output, layers, where)
        return out

    def check_size_names(self, block: str, args: dict, inputs: tuple) -> None:
        """in_channels, in_features and <input>_channels/_features name the sizes of a block's inputs."""
        for index, name in enumerate(inputs):
            for suffix in ("channels", "features"):
                reserved = {f"{name}_{suffix}"} | ({f"in_{suffix}"} if index == 0 else set())
                for arg in reserved & set(args):
                    self.error(
                        f"block {block}: the argument name {arg!r} is reserved: inside the block it is the size of "
                        f"input {name!r} (dim {1 if suffix == 'channels' else -1}), computed from the net",
                        self.key_pos(args, arg),
                        hint="remove the argument and use the name directly in expressions",
                    )

    def names(self, raw, pos: Pos, what: str) -> tuple:
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            self.error(f"{what}: expected a name or a list of names, received {shown(raw)}", pos)
            return ()
        long = next((i for i in items if len(i) > MAX_REFERENCE_LENGTH), None)
        if long is not None:
            self.error(f"{what}: names are at most {MAX_REFERENCE_LENGTH} characters, received {shown(long)}", pos)
            return ()
        return tuple(items)

    def layers(self, raw, pos: Pos, block: str | None) -> tuple:
        where = f"block {block}" if block else "the net"
        if not isinstance(raw, list) or not raw:
            self.error(f"{where}: layers must be a non-empty list", pos)
            return ()
        out = []
        for i, entry in enumerate(raw):
            layer = self.layer(entry, self.pos(raw, i))
            if layer is not None:
                out.append(layer)
        return tuple(out)

    def layer(self, raw, pos: Pos) -> LayerSpec | None:
        if not isinstance(raw, dict):
            self.error(
                f"a layer must be a mapping such as {{op: conv2d, out_channels: 16}}, received {shown(raw)}", pos
            )
            return None
        name = raw.get("name")
        if name is not None:
            check_identifier(name, "a layer name", self.pos(raw, "name"), self.problems)
            reason = reserved_reason(name) if isinstance(name, str) else None
            if reason:
                self.error(
                    f"the layer name {name!r} is reserved: {reason}",
                    self.pos(raw, "name"),
                    name,
                    hint="rename the layer",
                )
        label = name if isinstance(name, str) and len(name) <= MAX_NAME_LENGTH else None
        op, block = raw.get("op"), raw.get("block")
        if (op is None) == (block is None):
            self.error("a layer needs exactly one of `op:` (a torch.nn layer) or `block:` (a block name)", pos, label)
            return None
        for key, value in (("op", op), ("block", block)):
            if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME_LENGTH):
                self.error(f"{key} must be a name, received {shown(value)}", self.pos(raw, key), label)
                return None
        inputs = self.names(raw.get("in"), self.pos(raw, "in"), "in") if "in" in raw else None
        if inputs == ():
            self.error("in: expected a name or a non-empty list of names", self.pos(raw, "in"), label)
            inputs = None
        repeat = Arg(raw["repeat"], self.pos(raw, "repeat")) if "repeat" in raw else None
        when = Arg(raw["when"], self.pos(raw, "when")) if "when" in raw else None
        if block is not None:
            self.check_keys(raw, LAYER_KEYS, f"block use {label or block}", label)
            args = self.arg_map(raw.get("args") or {}, self.pos(raw, "args"), label)
            first = self.arg_map(raw.get("first") or {}, self.pos(raw, "first"), label)
            if "weight" in raw:
                self.error(
                    "`weight:` shares a weight between op layers; a block use has none",
                    self.key_pos(raw, "weight"),
                    label,
                )
        else:
            for key in ("args", "repeat", "first"):
                if key in raw:
                    self.error(
                        f"`{key}:` belongs to block uses; op arguments go directly on the layer",
                        self.key_pos(raw, key),
                        label,
                    )
            args = {k: Arg(v, self.pos(raw, k)) for k, v in raw.items() if k not in LAYER_KEYS}
            first = {}
        weight = None
        if op is not None and "weight" in raw:
            if isinstance(raw["weight"], str) and len(raw["weight"]) <= MAX_NAME_LENGTH:
                weight = Arg(raw["weight"], self.pos(raw, "weight"))
            else:
                self.error(
                    f"weight: expected the name of a layer, received {shown(raw['weight'])}",
                    self.pos(raw, "weight"),
                    label,
                )
        return LayerSpec(
            name=label,
            op=op,
            block=block,
            args=args,
            inputs=inputs,
            repeat=repeat,
            first=first,
            when=when,
            weight=weight,
            pos=pos,
        )

    def arg_map(self, raw, pos: Pos, layer: str | None) -> dict:
        if not isinstance(raw, dict):
            self.error(f"expected a mapping of argument -> value, received {shown(raw)}", pos, layer)
            return {}
        return {k: Arg(v, self.pos(raw, k)) for k, v in raw.items()}


def parse_text(text: str, path: str = "") -> tuple[NetSpec | None, list[Problem]]:
    doc, problems = located.load(text)
    if doc is None:
        return None, problems
    parser = _Parser(path)
    spec = parser.net(doc)
    return spec, problems + parser.problems
