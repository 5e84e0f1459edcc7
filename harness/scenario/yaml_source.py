"""YAML parsing that remembers where every key and value came from (file, line, column).

Errors about a scenario must point at the exact line, so the loader keeps the PyYAML node
marks for every path in the document, and rejects duplicate keys (which plain PyYAML
silently resolves to the last one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ScenarioError

Path_ = tuple[str | int, ...]


@dataclass
class SourceMap:
    file: str
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_, prefer_key: bool = False) -> tuple[int | None, int | None]:
        """Line and column (1-based) of the deepest known part of `path`."""
        for end in range(len(path), -1, -1):
            prefix = tuple(path[:end])
            table = (self.keys, self.values) if prefer_key else (self.values, self.keys)
            for marks in table:
                if prefix in marks:
                    return marks[prefix]
        return None, None

    def error(
        self, path: Path_, message: str, *, hint: str | None = None, prefer_key: bool = False
    ) -> ScenarioError:
        line, column = self.locate(path, prefer_key=prefer_key)
        return ScenarioError(message, file=self.file, line=line, column=column, hint=hint)


# Bounds the work a document can cause through aliases ("billion laughs"): a scenario is
# small, so a few hundred thousand nodes visited means an alias bomb, not a real file.
MAX_NODES = 200_000


MAX_INCLUDE_DEPTH = 8


class _Loader(yaml.SafeLoader):
    """SafeLoader whose value errors (an impossible date) carry the node's line, and which
    understands `!include path/to/fragment.yaml` (relative to the including file)."""

    base_dir: Path = Path(".")
    depth: int = 0

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value: {exc}", node.start_mark
            ) from None


def _construct_include(loader: _Loader, node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "!include takes a file path", node.start_mark)
    target = (loader.base_dir / str(node.value)).resolve()
    if loader.depth >= MAX_INCLUDE_DEPTH:
        raise yaml.constructor.ConstructorError(
            None, None, f"!include nested deeper than {MAX_INCLUDE_DEPTH} (a cycle?)", node.start_mark
        )
    if not target.is_file():
        raise yaml.constructor.ConstructorError(None, None, f"!include: no file {target}", node.start_mark)
    data, _ = load_yaml(target.read_text(encoding="utf-8"), str(target), depth=loader.depth + 1)
    return data


_Loader.add_constructor("!include", _construct_include)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node: yaml.Node, path: Path_, source: SourceMap, active: set[int], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise source.error(path, f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)")
    if id(node) in active:
        line, column = _mark(node)
        raise ScenarioError(
            "an alias refers to the node that contains it", file=source.file, line=line, column=column
        )
    source.values.setdefault(path, _mark(node))
    if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key == "<<":
                continue  # merge key: its entries are reported where they are defined
            if key in seen:
                line, column = _mark(key_node)
                raise ScenarioError(
                    f"duplicate key `{key}` (first defined on line {seen[key][0]})",
                    file=source.file,
                    line=line,
                    column=column,
                )
            seen[key] = _mark(key_node)
            source.keys.setdefault((*path, key), _mark(key_node))
            _walk(value_node, (*path, key), source, active, budget)
    else:
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), source, active, budget)
    active.discard(id(node))


def load_yaml(text: str, file: str, depth: int = 0) -> tuple[Any, SourceMap]:
    source = SourceMap(file)
    try:
        loader = _Loader(text)
        loader.base_dir = Path(file).parent
        loader.depth = depth
        try:
            node = loader.get_single_node()
            if node is None:
                raise ScenarioError("the file is empty", file=file, line=1)
            _walk(node, (), source, set(), [MAX_NODES])
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        kind = "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
        raise ScenarioError(f"{kind}: {problem}", file=file, line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"YAML error: {exc}", file=file) from None
    return data, source


def load_yaml_file(path: Path) -> tuple[Any, SourceMap]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text: {exc.reason}", file=str(path)) from None
    return load_yaml(text, str(path))
