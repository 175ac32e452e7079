"""Root conftest: tests never touch the network; the bench plugin is active in the checkout.

Installed copies register the same plugin through the ``pytest11`` entry point named
``slmbench.bench.plugin``, so listing it here does not register it twice.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest_plugins = ["slmbench.bench.plugin", "pytester"]
