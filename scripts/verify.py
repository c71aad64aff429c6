"""Kept for scripts written before scripts/ecs-app: the same as `scripts/ecs-app verify`."""
import sys
from pathlib import Path

sys.path[1:1] = [str(Path(__file__).resolve().parent.parent)]  # templates_src, beside scripts/
from lifecycle.cli import main  # noqa: E402

sys.exit(main(["verify", *sys.argv[1:]]))
