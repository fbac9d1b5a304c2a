"""Errors a user can cause (bad config, bad input, missing file).

The CLI prints these as one line and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class UserError(Exception):
    """A problem in the user's config or data, with a message naming the file/key/row."""
