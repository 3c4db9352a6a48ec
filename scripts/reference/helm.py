"""``helm``, the subcommands the infrastructure repository's validation runs, on Helm's own code.

``deployer validate`` calls ``helm dep up CHART`` and ``helm template CHART --values FILE...
[--set=KEY=VALUE] [--debug]``. No helm binary is published on the package registries this
project installs from; ``helm-python-sdk`` carries Helm 4's Go library. This script parses the
command line as helm does and hands the work to that library: the chart and its sub-charts
are loaded, values are coalesced with the chart defaults, validated against every chart's
``values.schema.json`` and the templates rendered by Helm's engine. As ``helm template`` does,
each rendered manifest must then parse as YAML (Helm sorts manifests by reading their kind).

``dep up`` works offline: it checks that every dependency of ``Chart.yaml`` is in ``charts/``
at its version (the vendored charts), and fails naming what is missing instead of
downloading it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

VERSION = "v4 (helm-python-sdk)"


def fail(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(1)


def merge_maps(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """helm's ``mergeMaps`` for ``--values`` files: mappings merge, anything else replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = value
    return out


def check_dependencies(chart_dir: Path) -> None:
    from helm_python import dependency_list

    bad = [
        f"{d['name']} {d['version']} ({d['status']})"
        for d in dependency_list(chart_dir)
        if d["status"] not in ("ok", "unpacked")
    ]
    if bad:
        fail(
            f"{chart_dir}: dependencies missing from charts/ (this helm works offline and "
            f"does not download them): {', '.join(bad)}"
        )


def dependency_update(args: list[str]) -> None:
    paths = [a for a in args if not a.startswith("-")]
    if len(paths) != 1:
        fail("helm dependency update takes one chart directory")
    chart_dir = Path(paths[0])
    if not (chart_dir / "Chart.yaml").is_file():
        fail(f"{chart_dir}: no Chart.yaml")
    check_dependencies(chart_dir)
    print(f"Dependencies of {chart_dir} are in charts/; nothing to download.")


def template(args: list[str]) -> None:
    from helm_python import Chart, HelmError, parse_set_string, parse_set_string_values

    chart_path: str | None = None
    values: dict[str, Any] = {}
    name, namespace, debug = "release-name", "default", False
    it = iter(args)
    for arg in it:
        key, eq, inline = arg.partition("=")
        if key in ("--values", "-f"):
            for path in (inline if eq else next(it)).split(","):
                with open(path, encoding="utf-8") as f:
                    loaded = yaml.safe_load(f) or {}
                if not isinstance(loaded, dict):
                    fail(f"failed to parse {path}: not a mapping of values")
                values = merge_maps(values, loaded)
        elif key in ("--set", "--set-string"):
            expression = inline if eq else next(it)
            parse = parse_set_string if key == "--set" else parse_set_string_values
            values = merge_maps(values, parse(expression))
        elif key in ("--namespace", "-n"):
            namespace = inline if eq else next(it)
        elif key == "--debug":
            debug = True
        elif arg.startswith("-"):
            fail(f"unknown flag: {arg} (this helm implements what the deployer's validation uses)")
        elif chart_path is None:
            chart_path = arg
        elif name == "release-name":
            name, chart_path = chart_path, arg
        else:
            fail(f"unexpected argument {arg!r}")
    if chart_path is None:
        fail("helm template needs a chart")
    chart_dir = Path(chart_path)
    check_dependencies(chart_dir)
    try:
        with Chart.load(chart_dir) as chart:
            manifests = chart.render(
                values, name=name, namespace=namespace, is_install=True, is_upgrade=False
            )
    except HelmError as exc:
        fail(str(exc).strip())
    out = []
    for source, text in sorted(manifests.items()):
        if Path(source).name.startswith("_") or source.endswith("NOTES.txt") or not text.strip():
            continue
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            if debug:
                print(text, file=sys.stderr)
            fail(f"YAML parse error on {source}: {exc}")
        if any(d is not None and not isinstance(d, dict) for d in documents):
            fail(f"YAML parse error on {source}: a manifest is not a mapping")
        out.append(f"---\n# Source: {source}\n{text.strip()}\n")
    sys.stdout.write("".join(out))


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: helm (template CHART [flags] | dependency update CHART | version)")
        return
    command, rest = argv[0], argv[1:]
    if command == "version":
        from helm_python import helm_sdk_version

        print(f'version.BuildInfo{{Version:"{helm_sdk_version()}", via helm-python-sdk}}')
    elif command in ("dep", "dependency") and rest and rest[0] in ("up", "update", "build"):
        dependency_update(rest[1:])
    elif command == "template":
        template(rest)
    else:
        fail(
            f"unknown command {' '.join(argv[:2])!r}: this helm implements template, "
            "dependency update and version"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
