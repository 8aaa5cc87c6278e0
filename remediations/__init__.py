"""Fixes: plans of typed actions, their preview, apply, journal and undo.

Imports checks (below) but never textual: the CLI and the wizard are thin
front ends over the same Plan objects, so what a preview shows is what
apply runs.
"""
