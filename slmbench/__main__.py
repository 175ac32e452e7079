import sys

from slmbench.cli import main

sys.exit(main())
