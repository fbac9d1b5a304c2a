"""Domain mixtures from proxy runs: runs table, sampling, MDE features, surrogates, search.

Modules (each importable on its own; torch/BoTorch/LightGBM load only where used):

* ``runs_table``: ``load_runs_table`` / ``write_runs_table`` (the CSV/Parquet format).
* ``sampling``: ``sample_mixtures`` (RegMix Dirichlet), ``availability_caps``.
* ``mde``: ``mde_features`` (Mixture of Data Experts), ``subsample_tokens``.
* ``surrogates``: linear / loglinear / lightgbm / gp / ensemble, ``kfold_evaluate``.
* ``search``: ``regmix_search``, ``bo_suggest``, ``bo_suggest_pool``, ``mf_bo_suggest_pool``.
* ``emit``: ``write_mixture_file`` (for ``selection.mixture_file``), ``write_suggestions``.
* ``cli``: ``add_mix_parser`` and ``cmd_mix`` for ``metamix mix fit|suggest|optimize``.
"""
