"""Tests of the infrastructure repository: real git for the local default, fake GitHub for
pull requests; the files and helpers they share."""

from __future__ import annotations

import subprocess

FILES = {
    "config/clusters/openscience/cluster.yaml": "name: openscience\nprovider: aws\n",
    "config/clusters/openscience/prod.values.yaml": "jupyterhub: {}\n",
    "terraform/aws/projects/openscience.tfvars": 'region = "us-west-2"\n',
}
BRANCH = "onboard-openscience"


def git(repo, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def tree(repo, ref: str) -> dict[str, str]:
    paths = git(repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    return {p: git(repo, "show", f"{ref}:{p}") + "\n" for p in paths}
