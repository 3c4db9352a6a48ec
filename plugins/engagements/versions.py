"""Kubernetes minor versions as the providers write them, and as the upkeep policy compares them.

Below the hooks (which read versions from the cloud APIs) and the upkeep lifecycle (which plans
with them): plain string functions, nothing else.
"""

from __future__ import annotations

import re

_MINOR = re.compile(r"1\.(0|[1-9]\d*)")


def minor_text(minor: int) -> str:
    """``31`` as the version ``1.31``: minors are compared as numbers, 1.9 before 1.10."""
    return f"1.{minor}"


def minor_of(version: str) -> str | None:
    """The ``1.N`` minor of a full version as providers write it: ``v1.31.4``,
    ``1.31.5-gke.1023000``, ``1.31``, ``v1.30.9-eks-5e0fdde``."""
    match = re.match(r"v?1\.(0|[1-9]\d*)(?:$|[.+-])", version.strip())
    return minor_text(int(match[1])) if match else None


def parse_minor(text: str) -> int | None:
    """The minor of a ``1.N`` string, or None when it is not one."""
    match = _MINOR.fullmatch(text)
    return int(match[1]) if match else None
