"""The command's name as the user typed it, for usage lines: `docchat` (the console
script) or `python -m rag`; both run the same commands."""

import sys
from pathlib import Path

PROG = "docchat" if Path(sys.argv[0]).name == "docchat" else "python -m rag"
