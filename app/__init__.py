"""Front ends: the command line (and, later, the Textual app)."""
