"""Operator commands for a deployed service or the local stack (``python -m admin --help``)."""
