"""`python -m lifecycle <command>`, with scripts/ and the checkout on the path: the same as scripts/ecs-app."""
import sys

from lifecycle.cli import main

sys.exit(main())
