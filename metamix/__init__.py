"""metamix: data curation for LLM pretraining.

Layers, each importing only those before it:
``metamix.base`` (errors, atomic files, progress, hashing) ← ``metamix.scorers`` ←
``metamix.pipeline`` (ingest, runner, executors, selection) ← ``metamix.mixtures`` (proxies,
Meta-rater, mixtures) ← ``metamix.config`` / ``metamix.cli`` (the whole run, composed).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metamix")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
