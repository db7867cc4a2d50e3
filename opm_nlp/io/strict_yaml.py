"""YAML read as plain data: no anchors or aliases, no repeated keys, no deep nesting.

Every YAML file opm-nlp reads (a codebook, a model folder's ``codebook.yaml``, a pre/post spec) goes
through :func:`load_yaml`. Plain YAML is enough for them, and each of the three refusals closes a way a
small file could do harm or mislead:

- an alias (``*name``) repeats a node; nested aliases make a 1 KB file stand for billions of values
  (a "billion laughs" file) that take minutes and gigabytes to check or print;
- a repeated key in one mapping (a code with two ``definition:`` lines) silently keeps the last value;
- nesting hundreds of levels deep exhausts Python's recursion limit in the YAML reader.

Each is refused as a :class:`yaml.YAMLError` carrying the line, so a reader's usual "invalid YAML at line
N" message covers it.

Examples
--------
>>> load_yaml("codes: [a, b]")
{'codes': ['a', 'b']}
>>> try:
...     load_yaml("a: 1\\na: 2")
... except yaml.YAMLError as exc:
...     print(exc.problem_mark.line + 1, exc.problem)
2 duplicate key 'a' (first at line 1); keep one of them
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent

#: Deepest nesting of lists and mappings accepted; a codebook needs 4, Python's stack allows ~300.
MAX_DEPTH = 50
_NO_ALIASES = "opm-nlp reads plain YAML without anchors (&name) or aliases (*name); write the value out in full"


class StrictLoader(yaml.SafeLoader):
    """:class:`yaml.SafeLoader` that refuses anchors, aliases, repeated keys and deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise ComposerError(None, None, f"alias '*{event.anchor}' found; {_NO_ALIASES}", event.start_mark)
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise ComposerError(None, None, f"anchor '&{event.anchor}' found; {_NO_ALIASES}", event.start_mark)
        if not isinstance(event, CollectionStartEvent):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(None, None, f"lists and mappings nested more than {MAX_DEPTH} deep",
                                    event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # a list or mapping as a key: SafeLoader refuses it itself
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in first:
                    raise ConstructorError(None, None, f"duplicate key '{key}' (first at line {first[key]}); "
                                                       f"keep one of them", key_node.start_mark)
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML text into plain Python data, refusing aliases, repeated keys and deep nesting.

    Raises
    ------
    yaml.YAMLError
        If the text is not YAML or uses what this reader refuses; ``problem_mark`` holds the line.
    """
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def compose_yaml(text: str) -> yaml.Node | None:
    """The YAML node tree of ``text`` (with line numbers), under the same refusals as :func:`load_yaml`."""
    return yaml.compose(text, Loader=StrictLoader)
