"""YAML loading with precise errors: file, key path, what was expected, what was found.

Pydantic validates; this module turns its errors into :class:`hwsim.errors.SpecError` so that every message
names the file and the dotted key path (the timeloopfe "path in the error" idea, without its machinery).
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from ..errors import Found, SpecError, short_repr

if TYPE_CHECKING:  # pydantic is imported by validate() (load_yaml needs PyYAML alone: a bad file fails fast)
    from pydantic import BaseModel

__all__ = ["load_yaml", "validate", "key_path"]

M = TypeVar("M", bound="BaseModel")


def key_path(loc: tuple) -> str:
    """Render a pydantic ``loc`` tuple as ``a.b[2].c`` (list indices in brackets)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # pydantic puts the tag of a discriminated union in loc (e.g. 'conv2d'); it is not a user key
            out += ("." if out else "") + str(part)
    return out


#: Bounds on a YAML file, checked while it is read (the largest file in this repository, a MobileNetV2
#: workload, has 1,150 nodes and nests 3 deep; a sweep 5 deep). They stop an alias bomb ("billion laughs": ten
#: anchors of ten aliases each expand to 10^10 nodes), a file nested thousands deep (PyYAML's composer and
#: pydantic recurse) or a huge file before any of it is built.
MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 200_000  # after every alias is expanded
MAX_DEPTH = 64
#: Integers beyond this are refused (floats represent them inexactly; no hwsim quantity is this large).
MAX_INT = 2 ** 53


def load_yaml(path: str | Path, *, duplicate_keys: str = "error") -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping.

    ``duplicate_keys``: ``"error"`` (hwsim's own files: a key given twice is refused) or ``"last"`` (another
    tool's file read as that tool's PyYAML reads it: the last one wins, with a :class:`UserWarning` naming the
    key and its lines).

    The file is bounded before anything is built from it: at most ``MAX_BYTES`` bytes, ``MAX_NODES`` nodes
    with every alias expanded, ``MAX_DEPTH`` levels of nesting, no recursive alias; every number finite
    (``.inf`` and ``.nan`` are refused: keys that allow no bound take ``unbounded``) and integers at most
    ``MAX_INT`` in magnitude.

    Raises
    ------
    SpecError
        The file is missing, a directory, not UTF-8, not valid YAML (with line and column), beyond the bounds
        above (naming the key path and line), or its top level is not a mapping.
    """
    p = Path(path)
    if p.is_dir():
        raise SpecError(str(p), "", "a YAML file", Found("a directory"))
    if not p.is_file():
        raise SpecError(str(p), "", "an existing YAML file",
                        Found("not a regular file") if p.exists() else "no such file")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise SpecError(str(p), "", f"a YAML file of at most {MAX_BYTES // 2**20} MiB",
                        Found(f"{size:,} bytes"))
    raw = p.read_bytes()
    if b"\0" in raw:
        raise SpecError(str(p), "", "a YAML text file",
                        Found(f"a binary file (NUL byte at offset {raw.index(0)})"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(str(p), "", "a UTF-8 text file",
                        Found(f"byte {e.object[e.start]:#04x} at offset {e.start}")) from None
    loader = _UniqueKeyLoader(text)
    loader.hwsim_source = str(p)
    loader.hwsim_duplicates = duplicate_keys
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise SpecError(str(p), "", "valid YAML", f"a syntax error at {where}",
                        detail=str(getattr(e, "problem", e))[:200]) from None
    finally:
        loader.dispose()
    if data is None:
        raise SpecError(str(p), "", "a mapping of keys at the top level", Found("an empty file"))
    if not isinstance(data, dict):
        raise SpecError(str(p), "", "a mapping of keys at the top level", Found(f"a {type(data).__name__}"))
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last silently) and
    checks the bounds of :func:`load_yaml` on the composed node graph before constructing anything."""

    hwsim_source = "<yaml>"
    hwsim_duplicates = "error"
    _depth = 0
    _nodes = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        # nesting and node count bounded while composing (the composer recurses once per level)
        self._depth += 1
        self._nodes += 1
        try:
            if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
                mark = self.peek_event().start_mark
                what = (f"nesting deeper than {MAX_DEPTH} levels" if self._depth > MAX_DEPTH
                        else f"more than {MAX_NODES:,} nodes")
                raise SpecError(self.hwsim_source, "", f"a YAML file of at most {MAX_DEPTH} levels and "
                                f"{MAX_NODES:,} nodes", Found(f"{what} at line {mark.line + 1}"))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_graph(self, node, self.hwsim_source, duplicates=self.hwsim_duplicates == "error")
        return self.construct_document(node)


def _children(node: yaml.Node) -> list[tuple[str, yaml.Node]]:
    """(key-path step, child) of a node; a mapping's key nodes are children too (step ``<key>``)."""
    if isinstance(node, yaml.SequenceNode):
        return [(f"[{i}]", c) for i, c in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out = []
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else "<key>"
            out += [(f".{name}", k), (f".{name}", v)]
        return out
    return []


_FLOAT_TAG = "tag:yaml.org,2002:float"
_INT_TAG = "tag:yaml.org,2002:int"


def _check_graph(loader: yaml.SafeLoader, root: yaml.Node, source: str, *, duplicates: bool = False) -> None:
    """Bound the expanded size and depth of a composed YAML graph (aliases are shared nodes, so the expanded
    size is a sum over a DAG, computed once per node) and refuse recursive aliases, non-finite floats and huge
    integers, naming the key path and line of the first; with ``duplicates``, also a key given twice in one
    mapping (its key path and both lines). Iterative: no recursion however the aliases nest."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]

    def fail(path: str, node: yaml.Node, expected: str, found: str) -> None:
        raise SpecError(source, path.lstrip("."), expected,
                        Found(f"{found} (line {node.start_mark.line + 1})"))

    while stack:
        node, path, done = stack.pop()
        nid = id(node)
        if done:
            on_path.discard(nid)
            kids = _children(node)
            size[nid] = 1 + sum(size[id(c)] for _, c in kids)
            depth[nid] = 1 + max((depth[id(c)] for _, c in kids), default=0)
            if size[nid] > MAX_NODES:
                fail(path, node, f"at most {MAX_NODES:,} YAML nodes with every alias expanded",
                     Found(f"more than {MAX_NODES:,} (an alias bomb?)"))
            if depth[nid] > MAX_DEPTH:
                fail(path, node, f"at most {MAX_DEPTH} levels of nesting with every alias expanded",
                     Found(f"more than {MAX_DEPTH}"))
            continue
        if nid in size:
            continue
        if nid in on_path:
            fail(path, node, "no alias inside its own anchor", Found("a recursive alias"))
        if isinstance(node, yaml.ScalarNode):
            _check_scalar(loader, node, path, fail)
            size[nid], depth[nid] = 1, 1
            continue
        if duplicates and isinstance(node, yaml.MappingNode):
            _check_unique_keys(node, path, source)
        on_path.add(nid)
        stack.append((node, path, True))
        for step, child in reversed(_children(node)):
            if id(child) not in size:
                stack.append((child, path + step, False))


def _check_unique_keys(node: yaml.MappingNode, path: str, source: str) -> None:
    """A scalar key given twice in one mapping: one error naming the key path and both lines (YAML itself
    keeps the last silently)."""
    seen: dict[tuple[str, str], int] = {}
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode):
            continue
        line = k.start_mark.line + 1
        if (k.tag, k.value) in seen:
            raise SpecError(source, f"{path}.{k.value}".lstrip("."), "each key once in a mapping",
                            Found(f"{str(k.value)[:60]!r} given twice (lines {seen[(k.tag, k.value)]} and "
                                  f"{line})"))
        seen[(k.tag, k.value)] = line


def _check_scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode, path: str, fail) -> None:  # noqa: ANN001
    """Refuse NaN, infinities and magnitudes above ``MAX_INT``, as YAML 1.2 reads the scalar (``.inf``,
    ``0x1F``, ``0o17``, ``1e-9``)."""
    if node.tag in (_FLOAT_TAG, _INT_TAG) and len(node.value) > 40:  # not worth converting (int() of
        fail(path, node, f"a number of magnitude at most 2**53 ({MAX_INT:,})",  # 5,000 digits raises)
             f"a number of {len(node.value):,} characters")
    if node.tag == _FLOAT_TAG:
        x = _yaml12_float(loader, node)
    elif node.tag == _INT_TAG:
        x = _yaml12_int(loader, node)
    else:
        return
    if math.isnan(x) or math.isinf(x):
        fail(path, node, "a finite number ('unbounded' where a key allows no bound)", node.value[:40])
    if abs(x) > MAX_INT:
        fail(path, node, f"a number of magnitude at most 2**53 ({MAX_INT:,})", node.value[:40])


def _mapping_no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen and getattr(loader, "hwsim_duplicates", "error") == "last":
            import warnings

            warnings.warn(f"{getattr(loader, 'hwsim_source', '<yaml>')}: key {str(key)[:60]!r} given twice "
                          f"(lines {seen[key] + 1} and {key_node.start_mark.line + 1}); the last is used, as "
                          "PyYAML does", UserWarning, stacklevel=2)
        elif key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {str(key)[:60]!r} given twice (first on line {seen[key] + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)

# YAML 1.2 (core schema) scalars instead of PyYAML's YAML 1.1 (YAML 1.2.2 spec, 10.3.2 Tag Resolution):
# - a boolean is only true/false (True, TRUE, False, FALSE): ``yes``/``no``/``on``/``off`` stay strings, and a
#   boolean key refuses them with the usual type error;
# - an integer is decimal ``[-+]?[0-9]+`` (leading zeros are decimal: ``040`` is 40, YAML 1.1 read octal 32),
#   ``0o[0-7]+`` octal or ``0x[0-9a-fA-F]+`` hex; YAML 1.1's ``0b...``, ``1_000`` and sexagesimal ``8:20``
#   (which it read as 500) are strings, so an integer key refuses them;
# - a float is ``[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`` (``1e-9``, ``1e300``, ``1.5e5``:
#   YAML 1.1's regex wanted a dot and a signed exponent), or ``.inf``/``.nan`` in their three spellings.
_BOOL_TAG = "tag:yaml.org,2002:bool"
_UniqueKeyLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG)]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_UniqueKeyLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                       list("tTfF"))
_INT_12 = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_12 = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
# integers first: the float pattern also matches "10"
_UniqueKeyLoader.add_implicit_resolver(_INT_TAG, _INT_12, list("-+0123456789"))
_UniqueKeyLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_12, list("-+0123456789."))


def _yaml12_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    v = str(loader.construct_scalar(node))
    if v.startswith(("0o", "0x")):
        return int(v, 0)
    try:
        return int(v, 10)
    except ValueError:  # an explicit !!int tag on something else: PyYAML's reading
        return loader.construct_yaml_int(node)


def _yaml12_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    v = str(loader.construct_scalar(node))
    low = v.lower()
    if low.endswith(".inf"):
        return -math.inf if low.startswith("-") else math.inf
    if low == ".nan":
        return math.nan
    try:
        return float(v)
    except ValueError:  # an explicit !!float tag on something else: PyYAML's reading
        return loader.construct_yaml_float(node)


_UniqueKeyLoader.add_constructor(_INT_TAG, _yaml12_int)
_UniqueKeyLoader.add_constructor(_FLOAT_TAG, _yaml12_float)


def _skip_tags(loc: tuple, model: type[BaseModel]) -> tuple:
    # Discriminated unions add the tag value to loc ('layers', 3, 'conv2d', 'stride'): drop such entries.
    tags = getattr(model, "__union_tags__", ())
    return tuple(p for p in loc if not (isinstance(p, str) and p in tags))


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names accepted at ``loc[:-1]`` inside ``model`` (best effort; for the unknown-key
    message)."""
    import typing

    from pydantic import BaseModel

    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if isinstance(cur, type) and issubclass(cur, BaseModel):
            fields = {(f.alias or k): f for k, f in cur.model_fields.items()}  # keys as the YAML spells them
            if part in fields:
                cur = fields[part].annotation
            else:  # a discriminated-union tag: find the member whose 'op' literal holds it
                cur = next((m for m in _members(cur) if part in typing.get_args(
                    m.model_fields.get("op").annotation if "op" in m.model_fields else ())), cur)
            continue
        members = _members(cur)
        match = [m for m in members
                 if "op" in m.model_fields and part in typing.get_args(m.model_fields["op"].annotation)]
        if match:
            cur = match[0]
        elif members:
            cur = members[0]
            if part in cur.model_fields:
                cur = cur.model_fields[part].annotation
    members = [cur] if isinstance(cur, type) and issubclass(cur, BaseModel) else _members(cur)
    names: set[str] = set()
    for m in members:
        names.update(f.alias or k for k, f in m.model_fields.items())
    return sorted(names)


def _members(tp: Any) -> list[type[BaseModel]]:
    import typing

    from pydantic import BaseModel

    out: list[type[BaseModel]] = []
    for a in typing.get_args(tp) or ():
        if isinstance(a, type) and issubclass(a, BaseModel):
            out.append(a)
        else:
            out.extend(_members(a))
    return out


#: bare branch labels (without brackets) pydantic gives scalar union members; no spec key is one of them
_BARE_BRANCH = ("int", "float", "str", "bool", "none")


def _is_branch(part: object) -> bool:
    """pydantic puts union branch labels in ``loc`` ('float', "literal['unbounded']", 'tuple[int, int]').
    Only the scalar labels come bare: a key named ``list`` or ``model`` (``cores.list``,
    ``transformer.model``) is a key, not a ``list[...]`` / model branch."""
    if not isinstance(part, str):
        return False
    return part.lower() in _BARE_BRANCH or "[" in part or "-" in part


#: pydantic's type messages (after "Input should be ") in this project's words
_WORDS = {"a valid integer": "an integer", "a valid number": "a number", "a valid boolean": "true or false",
          "a valid string": "a string", "a valid tuple": "a list", "a valid list": "a list"}
#: the error types of a scalar of the wrong type (strict: hwsim.spec.SpecModel), whose input is described
_TYPE_ERRORS = frozenset({"int_type", "float_type", "bool_type", "string_type", "tuple_type", "list_type"})


def _kind(value: object) -> str:
    """What a YAML value is, in words: 'a string', 'a float', 'a boolean', ..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _found(value: object) -> Found:
    """``'32' (a string)``: the value and its kind, for a scalar of the wrong type."""
    if value is None:
        return Found("null")
    text = str(value).lower() if isinstance(value, bool) else short_repr(value)  # as YAML spells it
    return Found(f"{text} ({_kind(value)})" if len(text) <= 120 else _kind(value))


def _plain(msg: str) -> str:
    """pydantic's message, in the words of this project's errors ('expected ...')."""
    for head in ("Value error, ", "Assertion failed, "):
        if msg.startswith(head):
            msg = msg[len(head):]
    if msg.startswith("Input should be "):
        msg = msg[len("Input should be "):]
        if msg.startswith(("greater", "less")):
            msg = "a value " + msg
    msg = msg.replace("a valid dictionary or instance of ", "a mapping of keys (").replace(
        "Tuple should have at least 1 item after validation, not 0", "at least one item")
    if msg.startswith("a mapping of keys ("):
        msg = "a mapping of keys"
    msg = _WORDS.get(msg, msg)
    if msg.lower().startswith("string should match pattern "):
        msg = "a string matching " + msg[len("string should match pattern "):]
    msg = msg.split(", unable to parse")[0].split(", got a number with a fractional part")[0]
    return msg[0].lower() + msg[1:] if msg else "a valid value"


def validate(model: type[M], data: dict[str, Any], source: str, *, prefix: str = "") -> M:
    """Validate ``data`` against a pydantic ``model``; raise the first problem as a :class:`SpecError`.

    Unknown keys are errors (models forbid extras), so a misspelt key is never silently ignored: an unknown
    key is reported before the missing key it was probably meant to be, with a suggestion.
    """
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        extra = [x for x in errs if x["type"] == "extra_forbidden"]
        err = extra[0] if extra else errs[0]
        raw_loc = tuple(err["loc"])
        loc = tuple(p for p in _skip_tags(raw_loc, model) if not _is_branch(p))
        key = key_path(loc)
        if prefix:
            key = f"{prefix}.{key}" if key else prefix
        typ = err["type"]
        found = err.get("input")
        if typ == "extra_forbidden":
            known = _known_keys(model, raw_loc)
            near = difflib.get_close_matches(str(loc[-1]), known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise SpecError(source, key, f"one of the known keys ({', '.join(known)})",
                            Found(f"unknown key {str(loc[-1])!r}{hint}")) from None
        if typ == "missing":
            raise SpecError(source, key, "this key to be given", None) from None
        if typ == "union_tag_invalid":
            ctx = err.get("ctx", {})
            raise SpecError(source, f"{key}.{ctx.get('discriminator', 'op').strip(chr(39))}",
                            f"one of {ctx.get('expected_tags', '')}", ctx.get("tag")) from None
        # a union: every branch failed at the same place; say what each would have taken
        same = [x for x in errs if tuple(p for p in _skip_tags(tuple(x["loc"]),
                                                               model) if not _is_branch(p)) == loc]
        msgs = list(dict.fromkeys(_plain(x["msg"]) for x in same))
        expected = msgs[0] if len(msgs) == 1 else " or ".join(msgs)
        if "; found " in expected:  # model-level checks say both: "EXPECTED; found FOUND"
            expected, found_text = expected.split("; found ", 1)
            found = Found(found_text)
        elif typ in _TYPE_ERRORS:
            found = _found(found)
        elif isinstance(found, dict | list) and len(short_repr(found)) > 120:
            found = Found(f"a {type(found).__name__}")
        raise SpecError(source, key, expected, found) from None
