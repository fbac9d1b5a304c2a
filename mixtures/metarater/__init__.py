"""Meta-rater: learn how to weight quality scores from the losses of small proxy models.

``config`` (the ``metarater:`` section) stays light so the run config can embed it;
``run`` does the work (plan, sweep, fit, search), with ``scores``, ``fit`` and ``summary``
behind it.
"""
