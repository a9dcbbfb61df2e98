"""Safe evaluation of Python-syntax configuration *data* (mmdetection configs, detectron2's
``!!python/object/apply:eval`` strings, PyTorch re-implementations' config dicts).

These files are data written in Python syntax. Importing or ``exec``-ing them would run arbitrary
code from a file the user merely wants analysed, so we walk the AST ourselves and allow only what
configs actually use: literals, names bound earlier in the same file, ``dict(...)``/``list(...)``
style calls of a few pure builtins, arithmetic, subscripts, attribute access on dicts
(``_base_.model.x``) and comprehensions over finite values. Anything else is a ``FormatError``
naming the file and line.

Not running code is not enough: ``a = 10**64; b = a**64; ...``, ``10**9 * 'x'``,
``'%0999999999d' % 1`` or nested comprehensions would hang or exhaust memory. Every evaluation
therefore runs under a ``Budget`` (one per config and all its ``_base_`` files): integers are
bounded by bit length, strings by length, every value by its size once nested containers and
shared references are expanded, comprehensions by their total iterations across nesting, and
the whole evaluation by a count of work units; expressions nest at most ``MAX_EVAL_DEPTH`` deep.
Sizes are checked *before* the operations that can blow up (``**``, sequence ``*``, ``%``
formatting, ``range``, ``round``) and after every other one. The limits are far above any real
config, and each message says so.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import warnings
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
    ast.Invert: operator.invert,
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
#: Limits of the evaluation budget (far above any real config; mmdet's largest are ~10⁴ units).
MAX_INT_BITS = 1024          # 2**1024: more than any float can hold
MAX_STR = 1_000_000          # characters in one string
MAX_VALUE_SIZE = 200_000     # units in one value, nested containers and repeats expanded
MAX_ITERATIONS = 100_000     # comprehension iterations, all comprehensions of a load together
MAX_WORK = 1_000_000         # work units (nodes evaluated + sizes of operands and results)
MAX_EVAL_DEPTH = 100         # nesting of expressions
MAX_FORMAT_WIDTH = 1000      # '%0999999999d' and friends
_NOTE = "no real config comes near it"
#: ``%`` conversion specs: flags, width, precision (``*`` reads them from the arguments).
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?")


def _parse_quietly(text: str, source: object, mode: str) -> ast.AST:
    """``ast.parse`` without Python's warnings about the config's own text (an invalid escape
    such as ``'\\:'`` in a URL is a DeprecationWarning now and a SyntaxWarning from Python 3.12
    on: noise on the user's terminal about a file anchorfit only reads)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(text, filename=str(source), mode=mode)


class Budget:
    """What one config load may spend: work units, comprehension iterations, and a memo of
    container sizes (keyed by ``id``; the value is kept alive so the id cannot be reused), so a
    value built from shared parts is sized once per part, not once per reference."""

    def __init__(self, work: int = MAX_WORK, iterations: int = MAX_ITERATIONS) -> None:
        self.work_left = work
        self.iterations_left = iterations
        self._sizes: dict[int, tuple[Any, int]] = {}

    def size(self, value: Any, limit: int = MAX_VALUE_SIZE, depth: int = 0) -> int:
        """Units in ``value`` (1 per scalar, 1 per 64 bits of an int, 1 per 8 characters of a
        string, plus 1 per container), or ``limit + 1`` as soon as the count passes ``limit``."""
        if value is None or isinstance(value, (bool, float, complex)):
            return 1
        if isinstance(value, int):
            return 1 + value.bit_length() // 64
        if isinstance(value, (str, bytes)):
            return 1 + len(value) // 8
        if isinstance(value, range):
            return 1 + len(value)
        key = id(value)
        hit = self._sizes.get(key)
        if hit is not None and hit[0] is value:
            return hit[1]
        if depth > 4 * MAX_EVAL_DEPTH:
            return limit + 1
        if isinstance(value, dict):
            items: Any = (x for kv in value.items() for x in kv)
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = value
        else:
            return 1
        total = 1
        for item in items:
            total += self.size(item, limit, depth + 1)
            if total > limit:
                return limit + 1
        self._sizes[key] = (value, total)
        return total


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

    def __init__(self, source: str | Path, scope: Mapping[str, Any] | None = None,
                 budget: Budget | None = None) -> None:
        self.source = str(source)
        self.scope: dict[str, Any] = dict(scope or {})
        self.budget = budget if budget is not None else Budget()
        self._depth = 0

    # ------------------------------------------------------------------ entry points

    def parse(self, text: str, mode: str = "exec") -> ast.AST:
        try:
            return _parse_quietly(text, self.source, mode)
        except SyntaxError as exc:
            raise FormatError(f"Python syntax error: {exc.msg}", source=self.source,
                              line=exc.lineno) from None
        except (RecursionError, MemoryError, ValueError) as exc:
            raise _parse_failure(exc, self.source, None) from None

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
            tree = _parse_quietly(text.strip(), self.source, "eval")
        except SyntaxError as exc:
            raise FormatError(f"Python syntax error in {text[:80]!r}: {exc.msg}",
                              source=self.source, line=line) from None
        except (RecursionError, MemoryError, ValueError) as exc:
            raise _parse_failure(exc, self.source, line) from None
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
        if self._depth >= MAX_EVAL_DEPTH:
            raise self.error(node, f"expression nested more than {MAX_EVAL_DEPTH} levels deep "
                                   f"({_NOTE})")
        self.spend(node, 1)
        self._depth += 1
        try:
            value = method(node, local or {})
        except FormatError:
            raise
        except RecursionError:
            raise self.error(node, f"expression nested too deeply ({_NOTE})") from None
        except Exception as exc:  # TypeError, ValueError, ... from an operation on config data
            raise self.error(node, f"cannot evaluate {_snippet(node)}: "
                                   f"{type(exc).__name__}: {exc}") from None
        finally:
            self._depth -= 1
        self.check(node, value)
        return value

    # ------------------------------------------------------------------ budget

    def spend(self, node: ast.AST, units: int) -> None:
        """Charge ``units`` of work; refuse the config when its budget is spent."""
        self.budget.work_left -= units
        if self.budget.work_left < 0:
            raise self.error(node, f"the config takes more than {MAX_WORK} steps to evaluate "
                                   f"({_NOTE}); stopped at {_snippet(node)}")

    def check(self, node: ast.AST, value: Any) -> int:
        """Refuse a value over the size limits; return its size in units."""
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise self.error(node, f"{_snippet(node)} is an integer of {value.bit_length()} "
                                   f"bits, beyond the limit of {MAX_INT_BITS} bits ({_NOTE})")
        if isinstance(value, (str, bytes)) and len(value) > MAX_STR:
            raise self.error(node, f"{_snippet(node)} is a string of {len(value)} characters, "
                                   f"beyond the limit of {MAX_STR} ({_NOTE})")
        size = self.budget.size(value)
        if size > MAX_VALUE_SIZE:
            raise self.error(node, f"{_snippet(node)} is a value of more than {MAX_VALUE_SIZE} "
                                   f"items (nested values and repeats counted), beyond the "
                                   f"limit ({_NOTE})")
        return size

    def _size_of(self, node: ast.AST, *values: Any) -> int:
        return sum(self.budget.size(v) for v in values)

    def _precheck_binop(self, node: ast.BinOp, left: Any, right: Any) -> None:
        """Refuse operations whose *result* would be too large before computing it."""
        op = node.op
        if isinstance(op, ast.Pow) and isinstance(left, int) and isinstance(right, int) and \
                right > 0 and abs(left) > 1:
            bits = (abs(left).bit_length() - 1) * right
            if bits > MAX_INT_BITS:
                raise self.error(node, f"{_snippet(node)} would be an integer of about {bits} "
                                       f"bits, beyond the limit of {MAX_INT_BITS} bits ({_NOTE})")
        if isinstance(op, ast.Mult):
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int) and n > 1:
                if isinstance(seq, (str, bytes)) and len(seq) * n > MAX_STR:
                    raise self.error(node, f"{_snippet(node)} would be a string of {len(seq) * n} "
                                           f"characters, beyond the limit of {MAX_STR} ({_NOTE})")
                elif not isinstance(seq, (str, bytes)) and \
                        self.budget.size(seq) * n > MAX_VALUE_SIZE:
                    raise self.error(node, f"{_snippet(node)} would repeat a value {n} times, "
                                           f"beyond the limit of {MAX_VALUE_SIZE} items ({_NOTE})")
        if isinstance(op, ast.Mod) and isinstance(left, (str, bytes)):
            fmt = left.decode("latin-1") if isinstance(left, bytes) else left
            for m in _PERCENT_SPEC.finditer(fmt):
                for part in m.groups():
                    if part == "*":
                        raise self.error(node, "'*' widths in % formatting are not supported in "
                                               "a config")
                    if part and int(part) > MAX_FORMAT_WIDTH:
                        raise self.error(node, f"% format width or precision {int(part)} is "
                                               f"beyond the limit of {MAX_FORMAT_WIDTH} ({_NOTE})")

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
        return {self._hashed(node, self.eval(e, local)) for e in node.elts}

    def _hashed(self, node: ast.AST, key: Any) -> Any:
        """``key``, after charging the work of hashing it (tuples re-hash every element)."""
        self.spend(node, self.budget.size(key))
        return key

    def _Dict(self, node: ast.Dict, local: Mapping[str, Any]) -> AttrDict:
        out = AttrDict()
        for k, v in zip(node.keys, node.values):
            if k is None:  # {**other}
                other = self.eval(v, local)
                self.spend(node, self.budget.size(other))
                out.update(other)
            else:
                key = self.eval(k, local)
                self.spend(node, self.budget.size(key))  # hashing a key reads all of it
                out[key] = self.eval(v, local)
        return out

    def _BinOp(self, node: ast.BinOp, local: Mapping[str, Any]) -> Any:
        fn = _BINOPS.get(type(node.op))
        if fn is None:
            raise self.error(node, f"unsupported operator {type(node.op).__name__}")
        left, right = self.eval(node.left, local), self.eval(node.right, local)
        self._precheck_binop(node, left, right)
        self.spend(node, self._size_of(node, left, right))
        try:
            return fn(left, right)
        except Exception as exc:
            raise self.error(node, f"cannot evaluate {_snippet(node)}: {exc}") from None

    def _UnaryOp(self, node: ast.UnaryOp, local: Mapping[str, Any]) -> Any:
        fn = _UNARY.get(type(node.op))
        if fn is None:
            raise self.error(node, f"unsupported operator {type(node.op).__name__}")
        return fn(self.eval(node.operand, local))

    def _BoolOp(self, node: ast.BoolOp, local: Mapping[str, Any]) -> Any:
        value: Any = None
        for v in node.values:  # short-circuit, as Python does
            value = self.eval(v, local)
            if bool(value) != isinstance(node.op, ast.And):
                return value
        return value

    def _Compare(self, node: ast.Compare, local: Mapping[str, Any]) -> bool:
        left = self.eval(node.left, local)
        for op, comp in zip(node.ops, node.comparators):
            right = self.eval(comp, local)
            self.spend(node, self._size_of(node, left, right))
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp, local: Mapping[str, Any]) -> Any:
        return self.eval(node.body if self.eval(node.test, local) else node.orelse, local)

    def _Subscript(self, node: ast.Subscript, local: Mapping[str, Any]) -> Any:
        value = self.eval(node.value, local)
        index = self.eval(node.slice, local)
        self.spend(node, self._size_of(node, index) +
                   (self.budget.size(value) if isinstance(index, slice) else 0))
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
        self._precheck_call(node, fn, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            raise self.error(node, f"{ast.unparse(node.func)}(): {exc}") from None
        if fn is dict:
            result = AttrDict(result)
        elif fn in (zip, enumerate, range):
            result = list(result)
        self.spend(node, self.check(node, result))
        return result

    def _precheck_call(self, node: ast.Call, fn: Callable[..., Any], args: list[Any],
                       kwargs: dict[str, Any]) -> None:
        """Refuse calls whose cost or result would be too large before making them."""
        self.spend(node, self._size_of(node, *args, *kwargs.values()))
        name = ast.unparse(node.func)
        if fn is range:
            try:
                n = len(range(*args, **kwargs))
            except (TypeError, ValueError, OverflowError) as exc:
                raise self.error(node, f"range(): {exc}") from None
            if n > MAX_VALUE_SIZE:
                raise self.error(node, f"{_snippet(node)} has {n} items, beyond the limit of "
                                       f"{MAX_VALUE_SIZE} ({_NOTE})")
        if fn is round and len(args) > 1 and isinstance(args[1], int) and \
                abs(args[1]) > MAX_FORMAT_WIDTH:
            raise self.error(node, f"round() to {args[1]} digits is beyond the limit of "
                                   f"{MAX_FORMAT_WIDTH} ({_NOTE})")
        if fn is sum:
            start = args[1] if len(args) > 1 else kwargs.get("start", 0)
            if not isinstance(start, (int, float)):
                raise self.error(node, f"{name}() of sequences is not supported in a config "
                                       "(only of numbers)")

    def _comprehension(self, node: Any, local: Mapping[str, Any]) -> list[dict[str, Any]]:
        envs: list[dict[str, Any]] = [dict(local)]
        for gen in node.generators:
            if gen.is_async:
                raise self.error(node, "async comprehensions are not configuration data")
            nxt = []
            for env in envs:
                for item in self.eval(gen.iter, env):
                    self.budget.iterations_left -= 1
                    if self.budget.iterations_left < 0:
                        raise self.error(node, f"comprehensions iterate more than "
                                               f"{MAX_ITERATIONS} times in all ({_NOTE})")
                    self.spend(node, 1)
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
                    if len(nxt) > MAX_VALUE_SIZE:
                        raise self.error(node, f"comprehension of more than {MAX_VALUE_SIZE} "
                                               f"items ({_NOTE})")
            envs = nxt
        return envs

    def _ListComp(self, node: ast.ListComp, local: Mapping[str, Any]) -> list[Any]:
        return [self.eval(node.elt, env) for env in self._comprehension(node, local)]

    def _GeneratorExp(self, node: ast.GeneratorExp, local: Mapping[str, Any]) -> list[Any]:
        return [self.eval(node.elt, env) for env in self._comprehension(node, local)]

    def _SetComp(self, node: ast.SetComp, local: Mapping[str, Any]) -> set[Any]:
        return {self._hashed(node, self.eval(node.elt, env))
                for env in self._comprehension(node, local)}

    def _DictComp(self, node: ast.DictComp, local: Mapping[str, Any]) -> AttrDict:
        return AttrDict((self._hashed(node, self.eval(node.key, env)), self.eval(node.value, env))
                        for env in self._comprehension(node, local))


def eval_expression(text: str, source: str | Path, line: int | None = None,
                    budget: Budget | None = None) -> Any:
    """Evaluate one Python expression of data (detectron2's ``!!python/object/apply:eval``);
    pass one ``budget`` for all the expressions of a config."""
    return SafeEvaluator(source, budget=budget).eval_expression(text, line)


def _parse_failure(exc: Exception, source: str, line: int | None) -> FormatError:
    """Python's parser gives up on very deep nesting with RecursionError or MemoryError (no
    line), and on some bad input with ValueError."""
    if isinstance(exc, ValueError):
        return FormatError(f"Python source cannot be parsed: {exc}", source=source, line=line)
    return FormatError(f"Python too deeply nested to parse ({type(exc).__name__}; {_NOTE})",
                       source=source, line=line)


def _snippet(node: ast.AST, width: int = 60) -> str:
    """The source of ``node``, shortened, for messages."""
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - only for a message
        text = type(node).__name__
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def find_line(text: str, pattern: str) -> int | None:
    """1-based line of the first regex match in ``text`` (for messages about merged configs)."""
    m = re.search(pattern, text, flags=re.MULTILINE)
    return None if m is None else text.count("\n", 0, m.start()) + 1
