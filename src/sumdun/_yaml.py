"""YAML read safely: :func:`load_yaml` refuses documents whose aliases expand too far.

``yaml.safe_load`` builds no objects from tags, but it resolves aliases by reference: nine
levels of nine aliases ("billion laughs", 300 bytes) make a value of 9**9 leaves that any code
walking it (merging defaults, hashing options, writing JSON) expands in memory for minutes.
Configuration files and manifests never need that; a document that would expand to more than
:data:`MAX_NODES` nodes, or that holds more than :data:`MAX_BYTES` of text, is refused at once.
"""
from __future__ import annotations

from .errors import UsageError

__all__ = ["load_yaml", "MAX_NODES", "MAX_BYTES"]

#: nodes of the document with every alias expanded (a 100 000-row manifest has ~1.2 M)
MAX_NODES = 5_000_000
#: characters of YAML text
MAX_BYTES = 256 * 2**20


def _expanded_size(node, memo: dict) -> int:
    """Nodes under ``node`` with aliases expanded, each shared node counted once per use
    (memoised by identity, so the walk itself stays linear in the composed graph)."""
    import yaml

    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a cycle counts once (safe_load rejects recursive aliases elsewhere)
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    return size


def load_yaml(text: str, where: str):
    """``yaml.safe_load(text)``, refusing a document larger than :data:`MAX_BYTES` or whose
    aliases expand past :data:`MAX_NODES` (a :class:`UsageError` naming ``where``). YAML
    syntax errors propagate as ``yaml.YAMLError``."""
    import yaml

    if len(text) > MAX_BYTES:
        raise UsageError(f"{where}: {len(text) / 2**20:.0f} MiB of YAML is more than a "
                         f"configuration or manifest holds ({MAX_BYTES // 2**20} MiB at most); "
                         "split it")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_NODES:
            raise UsageError(f"{where}: its aliases (*name) expand to {size:,} values, more "
                             f"than {MAX_NODES:,}: an alias bomb or a runaway file; write the "
                             "values out or use defaults: instead of nested aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()
