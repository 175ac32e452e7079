"""LoRA fine-tuning of registry models on slmbench tasks, and merging adapters into their base.

    from slmbench.training.config import make_config
    from slmbench.training.lora import train
    result = train(make_config("smollm2-135m-instruct", "iris", "fast"))

Importing this package stays cheap (no torch): the command line builds its parser from it.
"""
