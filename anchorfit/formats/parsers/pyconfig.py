"""Safe evaluation of Python-syntax configuration *data* (mmdetection configs, detectron2's
``!!python/object/apply:eval`` strings, PyTorch re-implementations' config dicts).

These files are data written in Python syntax. Importing or ``exec``-ing them would run arbitrary
code from a file the user merely wants analysed, so we walk the AST ourselves and allow only what
configs actually use: literals, names bound earlier in the same file, ``dict(...)``/``list(...)``
style calls of a few pure builtins, arithmetic, subscripts, attribute access on dicts
(``_base_.model.x``) and comprehensions over finite values. Anything else is a ``FormatError``
naming the file and line.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from anchorfit.errors import FormatError

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b, ast.Is: operator.is_, ast.IsNot: operator.is_not,
}
#: Pure builtins a config may call. Nothing here touches files, imports or attributes.
_CALLS: dict[str, Callable[..., Any]] = {
    "dict": dict, "list": list, "tuple": tuple, "set": set, "int": int, "float": float,
    "str": str, "bool": bool, "range": range, "len": len, "min": min, "max": max, "abs": abs,
    "round": round, "sum": sum, "sorted": sorted, "zip": zip, "enumerate": enumerate,
}
_MATH = {"sqrt": math.sqrt, "log": math.log, "log2": math.log2, "floor": math.floor,
         "ceil": math.ceil, "pi": math.pi}
#: Guard against pathological inputs (``range(10**12)``, ``'x' * 10**9``).
_MAX_ITEMS = 1_000_000


class AttrDict(dict):  # type: ignore[type-arg]
    """A dict whose keys also read as attributes (``_base_.model.backbone``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


_BASE_REF = re.compile(r"\{\{\s*(_base_\.[A-Za-z0-9_.\[\]'\"]+)\s*\}\}")


def substitute_base_refs(text: str) -> str:
    """mmengine's ``{{_base_.a.b}}`` placeholders (not Python) → ``_base_.a.b`` (Python).

    The substitution stays on its line, so reported line numbers remain the file's.
    """
    return _BASE_REF.sub(r"\1", text)


class SafeEvaluator:
    """Evaluate a module's top-level assignments (or one expression) without executing code."""

    def __init__(self, source: str | Path, scope: Mapping[str, Any] | None = None) -> None:
        self.source = str(source)
        self.scope: dict[str, Any] = dict(scope or {})

    # ------------------------------------------------------------------ entry points

    def parse(self, text: str, mode: str = "exec") -> ast.AST:
        try:
            return ast.parse(text, filename=self.source, mode=mode)
        except SyntaxError as exc:
            raise FormatError(f"Python syntax error: {exc.msg}", source=self.source,
                              line=exc.lineno) from None
        except (MemoryError, RecursionError):  # CPython's parser on deeply nested brackets
            raise FormatError("Python syntax error: nested too deeply", source=self.source
                              ) from None

    def run_module(self, text: str) -> dict[str, Any]:
        """Evaluate every top-level ``NAME = value``; return the names bound (in order)."""
        tree = self.parse(text)
        assert isinstance(tree, ast.Module)
        bound: dict[str, Any] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # docstring
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                raise self.error(stmt, "imports are code, not configuration data; anchorfit "
                                       "reads configs without running them (mmengine's "
                                       "pure-Python 'new style' configs are not supported)")
            if isinstance(stmt, ast.Assign):
                value = self.eval(stmt.value)
                for target in stmt.targets:
                    self._bind(target, value, bound)
                continue
            if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                self._bind(stmt.target, self.eval(stmt.value), bound)
                continue
            raise self.error(stmt, f"unsupported statement ({type(stmt).__name__}); a config "
                                   "file may only assign values")
        return bound

    def eval_expression(self, text: str, line: int | None = None) -> Any:
        try:
            tree = ast.parse(text.strip(), filename=self.source, mode="eval")
        except SyntaxError as exc:
            raise FormatError(f"Python syntax error in {text!r}: {exc.msg}", source=self.source,
                              line=line) from None
        assert isinstance(tree, ast.Expression)
        try:
            return self.eval(tree.body)
        except FormatError as exc:
            if line is not None and exc.line is not None:
                exc.line = line
                exc.args = (exc.format(),)
            raise

    # ------------------------------------------------------------------ evaluation

    def error(self, node: ast.AST, message: str) -> FormatError:
        return FormatError(message, source=self.source, line=getattr(node, "lineno", None))

    def _bind(self, target: ast.AST, value: Any, bound: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            self.scope[target.id] = value
            bound[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = list(value)
            if len(values) != len(target.elts):
                raise self.error(target, "cannot unpack: wrong number of values")
            for t, v in zip(target.elts, values):
                self._bind(t, v, bound)
        else:
            raise self.error(target, "only plain names can be assigned in a config")

    def eval(self, node: ast.AST, local: Mapping[str, Any] | None = None) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise self.error(node, f"unsupported Python construct {type(node).__name__} in a "
                                   "config (only data: literals, dict(...), names, arithmetic)")
        return method(node, local or {})

    def _Constant(self, node: ast.Constant, local: Mapping[str, Any]) -> Any:
        return node.value

    def _Name(self, node: ast.Name, local: Mapping[str, Any]) -> Any:
        if node.id in local:
            return local[node.id]
        if node.id in self.scope:
            return self.scope[node.id]
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        if node.id == "math":
            return AttrDict(_MATH)
        raise self.error(node, f"name {node.id!r} is not defined earlier in the config")

    def _List(self, node: ast.List, local: Mapping[str, Any]) -> list[Any]:
        return [self.eval(e, local) for e in node.elts]

    def _Tuple(self, node: ast.Tuple, local: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(self.eval(e, local) for e in node.elts)

    def _Set(self, node: ast.Set, local: Mapping[str, Any]) -> set[Any]:
        return {self.eval(e, local) for e in node.elts}

    def _Dict(self, node: ast.Dict, local: Mapping[str, Any]) -> AttrDict:
        out = AttrDict()
        for k, v in zip(node.keys, node.values):
            if k is None:  # {**other}
                out.update(self.eval(v, local))
            else:
                out[self.eval(k, local)] = self.eval(v, local)
        return out

    def _BinOp(self, node: ast.BinOp, local: Mapping[str, Any]) -> Any:
        fn = _BINOPS.get(type(node.op))
        if fn is None:
            raise self.error(node, f"unsupported operator {type(node.op).__name__}")
        left, right = self.eval(node.left, local), self.eval(node.right, local)
        if isinstance(node.op, ast.Mult) and isinstance(left, (str, list, tuple)) and \
                isinstance(right, int) and len(left) * right > _MAX_ITEMS:
            raise self.error(node, "value too large for a config")
        if isinstance(node.op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > 64:
            raise self.error(node, "exponent too large for a config")
        try:
            return fn(left, right)
        except Exception as exc:
            raise self.error(node, f"cannot evaluate: {exc}") from None

    def _UnaryOp(self, node: ast.UnaryOp, local: Mapping[str, Any]) -> Any:
        return _UNARY[type(node.op)](self.eval(node.operand, local))

    def _BoolOp(self, node: ast.BoolOp, local: Mapping[str, Any]) -> Any:
        values = [self.eval(v, local) for v in node.values]
        if isinstance(node.op, ast.And):
            return all(values) and values[-1]
        return next((v for v in values if v), values[-1])

    def _Compare(self, node: ast.Compare, local: Mapping[str, Any]) -> bool:
        left = self.eval(node.left, local)
        for op, comp in zip(node.ops, node.comparators):
            right = self.eval(comp, local)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp, local: Mapping[str, Any]) -> Any:
        return self.eval(node.body if self.eval(node.test, local) else node.orelse, local)

    def _Subscript(self, node: ast.Subscript, local: Mapping[str, Any]) -> Any:
        value = self.eval(node.value, local)
        index = self.eval(node.slice, local)
        try:
            return value[index]
        except Exception as exc:
            raise self.error(node, f"cannot index: {type(exc).__name__}: {exc}") from None

    def _Slice(self, node: ast.Slice, local: Mapping[str, Any]) -> slice:
        part = [None if p is None else self.eval(p, local) for p in (node.lower, node.upper, node.step)]
        return slice(*part)

    def _Attribute(self, node: ast.Attribute, local: Mapping[str, Any]) -> Any:
        value = self.eval(node.value, local)
        if isinstance(value, dict):
            if node.attr in value:
                return value[node.attr]
            raise self.error(node, f"no key {node.attr!r} in {ast.unparse(node.value)}")
        raise self.error(node, f"attribute access .{node.attr} on {type(value).__name__} is not "
                               "allowed in a config")

    def _Call(self, node: ast.Call, local: Mapping[str, Any]) -> Any:
        fn: Callable[..., Any] | None = None
        if isinstance(node.func, ast.Name) and node.func.id not in local and \
                node.func.id not in self.scope:
            fn = _CALLS.get(node.func.id)
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and \
                node.func.value.id == "math":
            fn = _MATH.get(node.func.attr)  # type: ignore[assignment]
        if fn is None or not callable(fn):
            raise self.error(node, f"call of {ast.unparse(node.func)}() is not allowed in a "
                                   "config (only dict/list/tuple/int/float/range/... )")
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self.eval(a.value, local))
            else:
                args.append(self.eval(a, local))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                kwargs.update(self.eval(kw.value, local))
            else:
                kwargs[kw.arg] = self.eval(kw.value, local)
        if fn is range and any(abs(int(a)) > _MAX_ITEMS for a in args):
            raise self.error(node, "range too large for a config")
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            raise self.error(node, f"{ast.unparse(node.func)}(): {exc}") from None
        if fn is dict:
            return AttrDict(result)
        if fn in (zip, enumerate, range):
            return list(result)
        return result

    def _comprehension(self, node: Any, local: Mapping[str, Any]) -> list[dict[str, Any]]:
        envs: list[dict[str, Any]] = [dict(local)]
        for gen in node.generators:
            if gen.is_async:
                raise self.error(node, "async comprehensions are not configuration data")
            nxt = []
            for env in envs:
                for item in self.eval(gen.iter, env):
                    scope = dict(env)
                    holder: dict[str, Any] = {}
                    saved = self.scope
                    self.scope = {**self.scope}
                    try:
                        self._bind(gen.target, item, holder)
                    finally:
                        self.scope = saved
                    scope.update(holder)
                    if all(self.eval(cond, scope) for cond in gen.ifs):
                        nxt.append(scope)
                    if len(nxt) > _MAX_ITEMS:
                        raise self.error(node, "comprehension too large for a config")
            envs = nxt
        return envs

    def _ListComp(self, node: ast.ListComp, local: Mapping[str, Any]) -> list[Any]:
        return [self.eval(node.elt, env) for env in self._comprehension(node, local)]

    def _GeneratorExp(self, node: ast.GeneratorExp, local: Mapping[str, Any]) -> list[Any]:
        return [self.eval(node.elt, env) for env in self._comprehension(node, local)]

    def _SetComp(self, node: ast.SetComp, local: Mapping[str, Any]) -> set[Any]:
        return {self.eval(node.elt, env) for env in self._comprehension(node, local)}

    def _DictComp(self, node: ast.DictComp, local: Mapping[str, Any]) -> AttrDict:
        return AttrDict((self.eval(node.key, env), self.eval(node.value, env))
                        for env in self._comprehension(node, local))


def eval_expression(text: str, source: str | Path, line: int | None = None) -> Any:
    """Evaluate one Python expression of data (detectron2's ``!!python/object/apply:eval``)."""
    return SafeEvaluator(source).eval_expression(text, line)


def find_line(text: str, pattern: str) -> int | None:
    """1-based line of the first regex match in ``text`` (for messages about merged configs)."""
    m = re.search(pattern, text, flags=re.MULTILINE)
    return None if m is None else text.count("\n", 0, m.start()) + 1
