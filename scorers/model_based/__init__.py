"""Model-based scorers: DCLM fastText quality, DSIR importance, n-gram perplexity, langid.

Each module registers its scorer when imported; shipped default models live in ``models/``
and are rebuilt by ``python -m metamix.scorers.model_based.train_defaults``.
"""
