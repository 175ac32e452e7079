"""`python -m slmbench.training --model M --task T [--preset fast]` trains; `python -m slmbench.training merge ...` merges."""

import sys

from slmbench.training.cli import main

sys.exit(main())
