"""YAML as the infrastructure repository formats it.

The repository runs ``ruamelfmt`` on every YAML file: two-space mappings, a sequence's dashes
at its parent key's indentation (``hubs:\\n- name: staging``), keys in the order written, no
anchors, long lines never folded. PyYAML's block style already puts the dashes there; this
dumper adds the rest: insertion order, multi-line strings as literal blocks (scripts stay
readable in review), and an empty value for ``None`` (helm's way to delete a chart default,
written ``key:`` in the repository).
"""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def _represent_none(dumper: yaml.SafeDumper, _: None) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:null", "")


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(type(None), _represent_none)


def dump_yaml(data: Any) -> str:
    """Serialise ``data`` deterministically in the repository's YAML style."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=10_000,
        indent=2,
    )
