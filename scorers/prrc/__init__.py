"""PRRC quality dimensions (Meta-rater): rubrics, LLM annotation, trained raters."""
