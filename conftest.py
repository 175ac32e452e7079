"""Root conftest: tests never touch the network."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
