"""A stand-in for the two ``aws`` CLI commands the archive script uses, writing to a folder.

``aws configure set KEY VALUE`` appends to ``$AWS_CONFIG_FILE``; ``aws s3 cp SRC s3://B/K``
copies a file (or standard input for ``-``) to ``$FAKE_S3/B/K``. Anything else fails, so a
script that starts relying on another command is noticed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(args: list[str]) -> int:
    if args[:2] == ["configure", "set"] and len(args) == 4:
        with open(os.environ["AWS_CONFIG_FILE"], "a", encoding="utf-8") as config:
            config.write(f"{args[2]} = {args[3]}\n")
        return 0
    operands = [a for a in args[2:] if not a.startswith("--")]
    if args[:2] != ["s3", "cp"] or len(operands) != 2 or not operands[1].startswith("s3://"):
        print(f"fake aws: unsupported command {args}", file=sys.stderr)
        return 2
    source, destination = operands
    bucket, _, key = destination.removeprefix("s3://").partition("/")
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    target = Path(os.environ["FAKE_S3"]) / bucket / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
