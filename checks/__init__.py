"""Detection engine: host access, facts, checks and profiles.

Nothing here imports textual, rich or sh: the CLI's JSON path and the
wizard both sit on top of this package.
"""

__version__ = "0.1.0"
