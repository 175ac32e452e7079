"""Defaults shared by the CLI, the bench plugin and the engine, importable without torch.

The pytest plugin declares its options with them in every pytest session of a project that
installed slmbench; keeping them out of `slmbench.loading` and `slmbench.generation` keeps that
import free of torch and transformers.
"""

DEFAULT_BATCH_SIZE = 16  # on 2 CPU cores batch 16 gives ~7x the tokens/s of batch 1
DEFAULT_CONCURRENCY = 64  # requests in flight to a server: a managed vLLM server on 2 CPU cores decoded the
# it_entities test split 2.0x faster with 80 in flight than with 16 (docs/performance.md)
DEFAULT_DTYPE = "bfloat16"
DTYPE_NAMES = ("bfloat16", "float32", "float16")  # torch dtypes by name, as --dtype accepts them
