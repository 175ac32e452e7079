"""`python -m training --model M --task T [--preset fast]` trains; `python -m training merge ...` merges."""

import sys

from training.cli import main

sys.exit(main())
