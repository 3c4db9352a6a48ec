"""Validate rendered changes with the infrastructure repository's own tools, from a checkout.

What the provider's engineers run before a merge, on a copy of the checkout with the change
applied, step by step (the cluster's change alone, then with the hubs'):

- ``deployer validate cluster-config``, ``support-config`` and ``all-hub-config`` per hub:
  cluster.yaml against its JSON schema, and ``helm template`` of the support and hub charts
  with the rendered ``values.jsonnet`` and every non-secret values file, which validates the
  values against each chart's and sub-chart's schema and renders every template;
- ``jsonnet`` of the AWS eksctl config against the repository's libsonnet;
- ``terraform fmt -check`` of the ``.tfvars`` and ``terraform plan`` of a module holding only
  the cloud's ``variables.tf``: no required variable missing, none unknown, types and
  validation rules accepted, without any provider to install;
- the cluster's (and staging hubs') entries in the deploy workflow.

The tools come from ``make reference`` (``$ENGAGEMENTS_REFERENCE_TOOLS``, default
``.cache/reference``): helm on Helm's SDK, Go jsonnet, terraform as a library, and a Python
with the deployer's requirements. A checkout or tool that is missing is a
:class:`ReferenceError` naming the path and what is missing, never a silent downgrade.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from engagements.settings import PROJECT_ROOT

from .render import RenderedChange
from .workflow import DEPLOY_WORKFLOW, WorkflowError, with_cluster, with_staging_hubs

TOOLS_ENV = "ENGAGEMENTS_REFERENCE_TOOLS"
CHECKOUT_FILES = (
    "src/deployer/__main__.py",
    "src/deployer/commands/validate/config.py",
    "src/deployer/commands/validate/cluster.schema.yaml",
    "helm-charts/basehub/Chart.yaml",
    "helm-charts/basehub/values.jsonnet",
    "helm-charts/basehub/values.schema.yaml",
    "helm-charts/support/Chart.yaml",
    "helm-charts/support/values.schema.yaml",
    "eksctl/libsonnet/cluster.jsonnet",
    "terraform/aws/variables.tf",
    "terraform/gcp/variables.tf",
    "terraform/azure/variables.tf",
    "terraform/openstack/variables.tf",
    DEPLOY_WORKFLOW,
)
COPIED = ("src", "helm-charts/basehub", "helm-charts/support", "eksctl/libsonnet")
TIMEOUT = 300


class ReferenceError(ValueError):
    """The reference cannot be used: the message names the path and what is missing."""


def is_checkout(path: str | Path) -> bool:
    """Whether ``path`` looks like a checkout (rather than the flat folder of schemas)."""
    return (Path(path) / "src" / "deployer").is_dir() or (Path(path) / "helm-charts").is_dir()


def check_checkout(path: str | Path) -> Path:
    """The checkout's path, or :class:`ReferenceError` listing the files it lacks."""
    root = Path(path).resolve()
    missing = [name for name in CHECKOUT_FILES if not (root / name).is_file()]
    for chart in ("basehub", "support"):
        if not (root / "helm-charts" / chart / "charts").is_dir():
            missing.append(
                f"helm-charts/{chart}/charts/ (run `helm dep up helm-charts/{chart}` in the "
                "checkout: validation works offline)"
            )
    if missing:
        raise ReferenceError(
            f"{root}: not a usable checkout of the infrastructure repository; missing "
            + ", ".join(missing)
        )
    return root


@dataclass(frozen=True)
class Tools:
    home: Path

    @property
    def bin(self) -> Path:
        return self.home / "bin"

    @property
    def python(self) -> Path:
        return self.home / "venv" / "bin" / "python"


def find_tools() -> Tools:
    """The tools ``make reference`` installed, or :class:`ReferenceError` saying so."""
    home = Path(os.environ.get(TOOLS_ENV) or PROJECT_ROOT / ".cache" / "reference")
    needed = [home / "bin" / tool for tool in ("helm", "jsonnet", "terraform")]
    needed.append(home / "venv" / "bin" / "python")
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        raise ReferenceError(
            f"{home}: the validation tools are not installed (missing {', '.join(missing)}); "
            "run `make reference` (or set ENGAGEMENTS_REFERENCE_TOOLS)"
        )
    return Tools(home)


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


class Workspace:
    """A scratch copy of the checkout's tools and charts with the changes written into it."""

    def __init__(self, checkout: Path, tools: Tools, root: Path) -> None:
        self.checkout, self.tools, self.root = checkout, tools, root
        for name in COPIED:
            shutil.copytree(checkout / name, root / name, symlinks=True)
        (root / "config" / "clusters").mkdir(parents=True)
        self.env = {
            **os.environ,
            "PATH": f"{tools.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(root / "src"),
            "DEPLOYER_ROOT_PATH": str(root),
            "DEPLOYER_ONLY_CORE": "1",
        }
        self.env.pop("GITHUB_WORKSPACE", None)

    def write(self, change: RenderedChange) -> None:
        for relative, text in change.files.items():
            path = self.root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=cwd or self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def deployer(self, *args: str) -> subprocess.CompletedProcess[str]:
        main = "import sys; from deployer.__main__ import main; sys.argv[0] = 'deployer'; main()"
        return self.run(str(self.tools.python), "-c", main, *args)


def _cluster(change: RenderedChange) -> tuple[str, dict]:
    path = next(p for p in change.files if p.endswith("/cluster.yaml"))
    return path, yaml.safe_load(change.files[path])


def _deployer_checks(ws: Workspace, step: str, name: str, hubs: list[str]) -> list[tuple[str, str]]:
    problems = []
    commands = [("cluster-config", name)]
    if step == "cluster":
        commands.append(("support-config", name))
    commands += [("all-hub-config", name, hub) for hub in hubs]
    for command in commands:
        result = ws.deployer("validate", *command)
        if result.returncode:
            where = f"{step}: deployer validate {' '.join(command)}"
            problems.append((where, _tail(result.stdout + "\n" + result.stderr)))
    return problems


def _eksctl(ws: Workspace, step: str, path: str, name: str) -> list[tuple[str, str]]:
    result = ws.run(str(ws.tools.bin / "jsonnet"), Path(path).name, cwd=ws.root / "eksctl")
    where = f"{step}: jsonnet {path}"
    if result.returncode:
        return [(where, _tail(result.stderr))]
    config = yaml.safe_load(result.stdout)
    if config.get("metadata", {}).get("name") != name:
        return [(where, f"metadata.name is {config.get('metadata', {}).get('name')!r}")]
    return []


def _terraform(ws: Workspace, step: str, path: str, text: str) -> list[tuple[str, str]]:
    cloud = path.split("/")[1]
    module = ws.root / ".terraform-check" / cloud
    module.mkdir(parents=True, exist_ok=True)
    shutil.copy(ws.checkout / "terraform" / cloud / "variables.tf", module / "variables.tf")
    (module / "change.tfvars").write_text(text, encoding="utf-8")
    terraform = str(ws.tools.bin / "terraform")
    problems = []
    result = ws.run(terraform, "fmt", "-check", "-diff", "-no-color", "change.tfvars", cwd=module)
    if result.returncode:
        problems.append((f"{step}: terraform fmt -check {path}", _tail(result.stdout, 20)))
    for args in (
        ("init", "-backend=false", "-input=false", "-no-color"),
        ("plan", "-input=false", "-no-color", "-var-file=change.tfvars"),
    ):
        result = ws.run(terraform, *args, cwd=module)
        output = result.stdout + "\n" + result.stderr
        if result.returncode or "Value for undeclared variable" in output:
            problems.append((f"{step}: terraform {args[0]} -var-file={path}", _tail(output, 20)))
            break
    return problems


def _workflow(ws: Workspace, step: str, name: str, hubs: list[str]) -> list:
    """The checkout's deploy workflow, with the changes so far, lists the cluster's entries."""
    text = (ws.root / DEPLOY_WORKFLOW).read_text(encoding="utf-8")
    where = f"{step}: {DEPLOY_WORKFLOW}"
    try:
        complete = with_staging_hubs(with_cluster(text, name), name, hubs)
    except WorkflowError as exc:
        return [(where, str(exc))]
    if complete != text:
        return [(where, f"the change does not add {name}'s entries to the deploy workflow")]
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [(where, f"not YAML any more: {exc}")]
    return []


def validate_with_checkout(
    checkout: str | Path, cluster: RenderedChange, hubs: RenderedChange | None = None
) -> list[tuple[str, str]]:
    """Every problem the repository's own validation finds, as (where, what it said)."""
    root = check_checkout(checkout)
    tools = find_tools()
    problems: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="infra-reference-") as tmp:
        ws = Workspace(root, tools, Path(tmp))
        workflow = (root / DEPLOY_WORKFLOW).read_text(encoding="utf-8")
        ws.write(RenderedChange("base", {DEPLOY_WORKFLOW: workflow}, (), (), {}))
        for change in (cluster, hubs):
            if change is None:
                continue
            ws.write(change)
            _, spec = _cluster(change)
            name = spec["name"]
            hub_names = [hub["name"] for hub in spec.get("hubs") or []]
            staging = [h for h in hub_names if "staging" in h]
            problems += _deployer_checks(ws, change.step, name, hub_names)
            problems += _workflow(ws, change.step, name, staging)
            for path, text in change.files.items():
                if path.endswith(".jsonnet") and path.startswith("eksctl/"):
                    problems += _eksctl(ws, change.step, path, name)
                elif path.endswith(".tfvars"):
                    problems += _terraform(ws, change.step, path, text)
    return problems
