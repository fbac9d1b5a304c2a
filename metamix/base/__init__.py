"""What every layer may use: user errors, atomic file output, progress bars, hashing.

Nothing here imports another part of metamix, so any module can depend on it without
creating a cycle.
"""
