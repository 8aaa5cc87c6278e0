"""Detection engine: host access, facts, checks and profiles.

Nothing here imports textual, rich or sh: the CLI's JSON path and the
wizard both sit on top of this package.
"""

__version__ = "0.1.0"

# The version of the report document (`kvmprep check --format json`): raised when
# a field changes meaning or goes away, so that `kvmprep fleet` refuses reports it
# would misread. Format 1 added the facts fleets compare (CPU flags and signature,
# package versions, addresses, machine id).
REPORT_FORMAT = 1
