"""``python -m birthday_pipeline.schema {status,apply} [--conn-id ID]``: see ``cli``."""

import sys

from birthday_pipeline.schema.cli import main

if __name__ == "__main__":  # importing the module (as tools that walk the package do) runs nothing
    sys.exit(main())
