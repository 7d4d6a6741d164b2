"""Runner for ExportedProgram files (.pt2), refusing an archive that would run code as it loads.

`torch.export.load` warns never to load an untrusted file, and in torch 2.13 a .pt2 can run code in
several ways (torch/export/pt2_archive/_package.py, torch/_export/serde/serialize.py):

- `_load_state_dict` / `_load_constants` unpickle each weight and tensor constant whose payload config
  (data/weights/<model>_weights_config.json, data/constants/<model>_constants_config.json) says
  `use_pickle` with `torch.load(weights_only=False)`; constants named `opaque_obj_*` with
  `pickle.loads`, `custom_obj_*` with the TorchScript unpickler (`torch._C._pickle_load_obj`);
- `deserialize_torch_artifact` loads the sample inputs (data/sample_inputs/<model>.pt, in every .pt2),
  legacy data/weights/<model>.pt and data/constants/<model>.pt files, and a pre-2.8 archive (a root
  `version` entry, tried when `load_pt2` fails) with `torch.load(weights_only=True)`, and on failure
  again with weights_only=False;
- `load_pt2` loads every data/aotinductor/<model>/ as a compiled shared library;
- `GraphModuleDeserializer._parse_sym_expr` parses each symbolic size (`expr_str`) with
  `sympy.sympify`, which evaluates the text as Python;
- the graph is compiled to Python source (torch.fx codegen) that embeds names from the file
  (placeholders, attribute paths, keyword names) unquoted;
- `ExportedProgram.module()` compiles the file's `guards_code` strings, and guards it writes around
  the placeholders' example values, with `exec`;
- the graph may call ATen operators that read and write files (`aten::save`, `aten::from_file`).
(A node's target may be any `torch.`-prefixed attribute path, `deserialize_operator`, but the
verifier that ExportedProgram runs at load, torch/_export/verifier.py, accepts operators only.)

graphmint's exporter writes none of these (its weights are plain tensors: `use_pickle` is false), so
this runner reads the file once, checks it (`check_pt2`) without unpickling anything unsafely, and
only then loads it from memory: pickles torch would load without weights_only are refused, the ones it
tries with weights_only=True first must load that way here (then torch's first try succeeds on the
same bytes and its fallback never runs), and the graph's text must be names, operator paths and
symbolic sizes built from sympy constructors, its guards comparisons of input sizes. After loading,
`check_program` refuses file operators and text inputs, and the module is made with
`check_guards=False`, so no guard is compiled (its pre-hook still checks the inputs against the dims'
ranges and equalities).
"""

from __future__ import annotations

import ast
import io
import json
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

from graphmint.validators._torch import TorchRunner
from graphmint.validators.base import UnsafeArtifactError

__all__ = ["ExportedProgramCudaRunner", "ExportedProgramRunner", "check_program", "check_pt2"]

#: a name, attribute path or operator path, as the serializer writes them: no quotes, brackets, spaces,
#: so that codegen, which embeds them unquoted or in double quotes, can only fail on them, never run them
#: ("/" and "-" at worst make an arithmetic expression of names; Keras's torch backend names its
#: parameters by variable path, "dense/kernel")
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_./\-]*")
#: JSON fields torch never turns into code: node metadata, pytree specs (resolved through a registry of
#: types), string constants (repr'd by codegen), versions
_INERT_FIELDS = frozenset({"metadata", "in_spec", "out_spec", "as_string", "as_strings", "torch_version"})
#: sympy constructors a symbolic size may be built from (what `sympy.srepr` writes for the size
#: expressions torch.export produces, and the functions torch's deserializer adds to the namespace)
_SYMPY_CALLS = frozenset(
    {
        "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Max", "Min", "Mod", "Abs",
        "floor", "ceiling", "sqrt", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality", "Unequality",
        "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "And", "Or", "Not",
        "Piecewise", "ExprCondPair", "ITE",
        "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt",
        "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
        "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt",
        "RoundDecimal", "ToFloat", "Identity",
    }
)  # fmt: skip
_SYMPY_CONSTANTS = frozenset({"oo", "zoo", "nan", "true", "false"})
#: a size symbol (s0, u3, zuf1) or a literal a sympy constructor takes as text
_SYMBOL_NAME = re.compile(r"[a-z]+[0-9]+")
_TEXT_LITERAL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[-+]?[0-9]*\.?[0-9]+(e[-+]?[0-9]+)?")
_EXPR_NODES = (
    ast.Expression, ast.Call, ast.Name, ast.Load, ast.Constant, ast.keyword,
    ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitAnd, ast.BitOr,
    ast.USub, ast.UAdd, ast.Not, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.And, ast.Or,
)  # fmt: skip
#: what a guard may call: a tensor's size methods, math functions, sympy functions
_GUARD_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
_GUARD_MATH = frozenset({"floor", "ceil", "trunc", "isnan", "isinf", "sqrt", "inf"})
_GUARD_NODES = (*_EXPR_NODES, ast.Subscript, ast.Attribute)
#: operators that read or write files: refused even though they are ATen operators
_FILE_OPERATORS = frozenset({"aten::save", "aten::from_file"})
#: entries torch unpickles without weights_only, by payload file name prefix
_PICKLED_CONSTANTS = {"opaque_obj_": "pickle.loads", "custom_obj_": "the TorchScript unpickler"}
#: the first few problems are named; a file with more says how many
_SHOWN = 3


def _refuse(problems: list[str]) -> None:
    problems = list(dict.fromkeys(p for p in problems if p))
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise UnsafeArtifactError(
            f"refusing the .pt2 without loading it: {'; '.join(problems[:_SHOWN])}{more}. graphmint's own "
            "exports hold none of this; export the model again"
        )


def _expression_problem(
    text: str, allowed: tuple[type[ast.AST], ...], node_problem: Callable[[ast.AST], str | None]
) -> str | None:
    """Why `text` is not an expression made only of `allowed` nodes, each of which `node_problem`
    accepts and whose constants are plain, or None."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return "is not an expression"
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            return f"uses {type(node).__name__}"
        why = _constant_problem(node.value) if isinstance(node, ast.Constant) else node_problem(node)
        if why:
            return why
    return None


def _constant_problem(value: Any) -> str | None:
    if isinstance(value, str) and (not _TEXT_LITERAL.fullmatch(value) or "__" in value):
        return f"holds the text {value[:40]!r}"
    if not isinstance(value, str | int | float | bool | None):
        return f"holds a {type(value).__name__}"
    return None


def _sym_node_problem(node: ast.AST) -> str | None:
    """Why a node of a symbolic size is not a sympy constructor, constant or symbol, or None."""
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLS):
            return f"calls {ast.unparse(node.func)}"
        if any(kw.arg is None or not isinstance(kw.value, ast.Constant) for kw in node.keywords):
            return "passes a keyword that is not a constant"
    elif isinstance(node, ast.Name):
        name = node.id
        if name not in _SYMPY_CALLS and name not in _SYMPY_CONSTANTS and not _SYMBOL_NAME.fullmatch(name):
            return f"names {name!r}"
    return None


def _guard_node_problem(node: ast.AST) -> str | None:
    """Why a node of a guard is not a size read, a math function or a comparison of them, or None."""
    if isinstance(node, ast.Attribute):
        is_math = isinstance(node.value, ast.Name) and node.value.id == "math"
        if node.attr not in (_GUARD_MATH if is_math else _GUARD_METHODS):
            return f"reads .{node.attr}"
    elif isinstance(node, ast.Call):
        func = node.func
        if node.keywords or not (
            isinstance(func, ast.Attribute) or (isinstance(func, ast.Name) and func.id in _SYMPY_CALLS)
        ):
            return f"calls {ast.unparse(func)}"
    elif isinstance(node, ast.Name) and node.id not in {"L", "math", *_SYMPY_CALLS}:
        return f"names {node.id!r}"
    return None


def _sym_expr_problem(text: str) -> str | None:
    """Why `text` is not a symbolic size made of sympy constructors, or None."""
    return _expression_problem(text, _EXPR_NODES, _sym_node_problem)


def _guard_problem(text: str) -> str | None:
    """Why `text` is not a guard comparing input sizes (`L['x'].size()[0] == L['y'].size()[0]`), or None."""
    return _expression_problem(text, _GUARD_NODES, _guard_node_problem)


def _strings(value: Any, field: str = "") -> Iterator[tuple[str, str]]:
    """(field, text) for every string of a JSON document outside the inert fields, keys included."""
    if field in _INERT_FIELDS:
        return
    if isinstance(value, str):
        yield field, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield field, key
            yield from _strings(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, field)


def _model_problems(name: str, text: str) -> list[str]:
    try:
        document = json.loads(text)
    except ValueError:
        return [f"{name} is not JSON"]
    problems = []
    for field, value in _strings(document):
        if field == "expr_str":
            why = _sym_expr_problem(value)
            if why:
                problems.append(f"the symbolic size {value[:60]!r} in {name} {why}, and torch evaluates it")
        elif field == "guards_code":
            why = _guard_problem(value)
            if why:
                problems.append(f"the guard {value[:60]!r} in {name} {why}, and torch compiles it")
        elif not _PLAIN_TEXT.fullmatch(value):
            problems.append(f"{name} holds {value[:60]!r} as a {field or 'key'}, where torch expects a name")
    return problems


def _weights_only_problem(reader: Any, entry: str) -> str | None:
    """Why `entry` does not load with torch.load(weights_only=True) (which never runs code), or None."""
    import torch

    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the verdict below says enough
            warnings.simplefilter("ignore")
            torch.load(io.BytesIO(reader.read_bytes(entry)), weights_only=True)
    except Exception as exc:
        return f"{entry} is a pickle that loads only with weights_only=False ({type(exc).__name__})"
    return None


def _payload_problems(reader: Any, config_file: str, directory: str, what: str) -> list[str]:
    from torch.export.pt2_archive._package import _load_payload_config

    if config_file not in reader.get_file_names():
        return []  # torch.export.load fails on it before unpickling anything
    problems = []
    for fqn, meta in _load_payload_config(reader, config_file).config.items():
        if meta.path_name.startswith(tuple(_PICKLED_CONSTANTS)):
            how = next(v for k, v in _PICKLED_CONSTANTS.items() if meta.path_name.startswith(k))
            problems.append(
                f"{directory}{meta.path_name} ({what} {fqn!r}) is a pickle torch loads with {how}"
            )
        elif meta.use_pickle:
            problems.append(
                f"{directory}{meta.path_name} ({what} {fqn!r}) is a pickle (use_pickle) torch loads with "
                "weights_only=False"
            )
    return problems


def check_pt2(data: bytes) -> None:
    """Refuse (UnsafeArtifactError) a .pt2 that would run code when torch.export.load reads it.

    Reads the archive with torch's own reader (`PT2ArchiveReader`, as `load_pt2` does) and unpickles
    nothing except with weights_only=True. Problems that are not about safety (a file that is not a
    .pt2) are left to torch.export.load to report.
    """
    from torch.export.pt2_archive import PT2ArchiveReader
    from torch.export.pt2_archive import constants as c

    problems = []
    try:
        root = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        root = []
    if "version" in root:
        problems.append(
            "it is a pre-2.8 torch.export archive (a root 'version' entry), which torch unpickles"
        )
    try:
        reader = PT2ArchiveReader(io.BytesIO(data))
    except Exception:
        _refuse(problems)
        return
    files = reader.get_file_names()
    problems += [f"{f} is compiled code (AOTInductor)" for f in files if f.startswith(c.AOTINDUCTOR_DIR)][:1]
    prefix, suffix = c.MODELS_FILENAME_FORMAT.split("{}")
    for file in (f for f in files if f.startswith(c.MODELS_DIR)):
        model = file[len(prefix) : -len(suffix)]  # as torch's _load_exported_programs names it
        problems += _model_problems(file, reader.read_string(file))
        for legacy in (f"{c.WEIGHTS_DIR}{model}.pt", f"{c.CONSTANTS_DIR}{model}.pt"):
            if legacy in files:
                problems.append(_weights_only_problem(reader, legacy) or "")
        if f"{c.WEIGHTS_DIR}{model}.pt" not in files:
            config = c.WEIGHTS_CONFIG_FILENAME_FORMAT.format(model)
            problems += _payload_problems(reader, config, c.WEIGHTS_DIR, "weight")
        if f"{c.CONSTANTS_DIR}{model}.pt" not in files:
            config = c.CONSTANTS_CONFIG_FILENAME_FORMAT.format(model)
            problems += _payload_problems(reader, config, c.CONSTANTS_DIR, "constant")
        sample_inputs = c.SAMPLE_INPUTS_FILENAME_FORMAT.format(model)
        if sample_inputs in files:
            problems.append(_weights_only_problem(reader, sample_inputs) or "")
    _refuse(problems)


def check_program(program: Any) -> None:
    """Refuse (UnsafeArtifactError) a loaded ExportedProgram that calls operators that read or write
    files, or takes text inputs (the guards `module()` compiles quote them). Checked before it runs.
    """
    import torch

    problems = []
    for module_name, module in program.graph_module.named_modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            where = f"node {node.name!r}" + (f" of {module_name}" if module_name else "")
            op = node.target._schema.name if isinstance(node.target, torch._ops.OpOverload) else ""
            if node.op == "placeholder" and isinstance(node.meta.get("val"), str):
                problems.append(f"{where} is a text input")
            elif op in _FILE_OPERATORS:
                problems.append(f"{where} calls {op}, which reads or writes files")
    _refuse(problems)


class ExportedProgramRunner(TorchRunner):
    name = "torch-export"

    def load(self) -> Callable[..., Any]:
        import torch
        import torch.ao.quantization.fx._decomposed  # registers the ops a quantized (PT2E) program holds

        assert self.artifact.path is not None
        data = self.artifact.path.read_bytes()  # read once: what is checked is what is loaded
        check_pt2(data)
        program = torch.export.load(io.BytesIO(data))
        check_program(program)
        module: Callable[..., Any] = program.module(check_guards=False).to(self.device)
        return module


class ExportedProgramCudaRunner(ExportedProgramRunner):
    """The same ExportedProgram on a CUDA device; skipped, with the reason, where there is none."""

    name = "torch-export-cuda"
    device = "cuda"
