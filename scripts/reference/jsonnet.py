"""``jsonnet``, the Go implementation (``gojsonnet``), with the flags the deployer passes.

The deployer renders ``values.jsonnet`` files with ``jsonnet --jpath DIR --ext-str K=V...
FILE --output-file OUT`` and checks ``jsonnet --version`` names the Go implementation; the
eksctl configs are rendered with ``jsonnet FILE``.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import _gojsonnet

    if argv and argv[0] in ("--version", "-v"):
        print("Jsonnet commandline interpreter (Go implementation) v0.22.0 (gojsonnet)")
        return
    jpath: list[str] = []
    ext_vars: dict[str, str] = {}
    output, file = None, None
    it = iter(argv)
    for arg in it:
        key, eq, inline = arg.partition("=")
        if key in ("-J", "--jpath"):
            jpath.append(inline if eq else next(it))
        elif key in ("-V", "--ext-str"):
            name, _, value = (inline if eq else next(it)).partition("=")
            ext_vars[name] = value
        elif key in ("-o", "--output-file"):
            output = inline if eq else next(it)
        elif arg.startswith("-"):
            print(f"ERROR: unknown flag {arg}", file=sys.stderr)
            sys.exit(1)
        else:
            file = arg
    if file is None:
        print("ERROR: must give a filename", file=sys.stderr)
        sys.exit(1)
    try:
        result = _gojsonnet.evaluate_file(file, jpathdir=jpath, ext_vars=ext_vars)
    except RuntimeError as exc:
        print(str(exc).rstrip(), file=sys.stderr)
        sys.exit(1)
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(result)
    else:
        sys.stdout.write(result)


if __name__ == "__main__":
    main(sys.argv[1:])
