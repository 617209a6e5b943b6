"""Container entrypoint: the GitHub runner starts this with INPUT_* and GITHUB_* set."""

import sys

from remediate.cli import main

if __name__ == "__main__":
    sys.exit(main(["action"]))
