"""The deploy workflow's per-cluster lists (``.github/workflows/deploy-hubs.yaml``).

GitHub Actions cannot list a matrix job's outputs dynamically, so the repository's deploy
workflow names each cluster in the ``upgrade-support`` job's outputs (``failure_<cluster>``)
and each staging hub in the ``upgrade-staging`` job's (``failure_<cluster>_<hub>``); the
production hubs of a cluster deploy only when its entries say its staging did not fail. A
cluster missing there is never deployed by CI. These functions add the entries to the
workflow's text as an engineer would: one line each, after the last one of its list, the
rest of the file untouched.
"""

from __future__ import annotations

import re

DEPLOY_WORKFLOW = ".github/workflows/deploy-hubs.yaml"
SUPPORT_JOB = "upgrade-support"
STAGING_JOB = "upgrade-staging"


class WorkflowError(ValueError):
    """The workflow does not have the shape the entries go into."""


def entry(name: str) -> str:
    return f"failure_{name}: ${{{{ steps.declare-failure.outputs.failure_{name} }}}}"


def support_entry(cluster: str) -> str:
    return entry(cluster.replace(".", "-"))


def staging_entry(cluster: str, hub: str) -> str:
    return entry(f"{cluster.replace('.', '-')}_{hub.replace('.', '-')}")


def _add(text: str, job: str, line: str) -> str:
    lines = text.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == f"  {job}:"), None)
    if start is None:
        raise WorkflowError(f"{DEPLOY_WORKFLOW}: no job {job!r}")
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"  \S", lines[i])), len(lines))
    outputs = next((i for i in range(start + 1, end) if lines[i].rstrip() == "    outputs:"), None)
    if outputs is None:
        raise WorkflowError(f"{DEPLOY_WORKFLOW}: job {job!r} declares no outputs")
    last = outputs
    for i in range(outputs + 1, end):
        if lines[i].startswith("      failure_"):
            if lines[i].strip() == line:
                return text
            last = i
        elif lines[i].strip():
            break
    lines.insert(last + 1, f"      {line}\n")
    return "".join(lines)


def with_cluster(text: str, cluster: str) -> str:
    """The workflow with the cluster's support entry (the cluster's pull request)."""
    return _add(text, SUPPORT_JOB, support_entry(cluster))


def with_staging_hubs(text: str, cluster: str, hubs: list[str]) -> str:
    """The workflow with an entry per staging hub (the hubs' pull request)."""
    for hub in hubs:
        text = _add(text, STAGING_JOB, staging_entry(cluster, hub))
    return text
