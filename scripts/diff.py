"""make diff (see scripts/lifecycle/diff.py); options: python scripts/diff.py --help."""
import sys
from pathlib import Path

sys.path[1:1] = [str(Path(__file__).resolve().parent.parent)]  # templates_src, beside scripts/
from lifecycle.cli import main  # noqa: E402

sys.exit(main("diff"))
