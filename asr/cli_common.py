"""What the `asr` command's modules share: exit statuses, the usage error, argument types."""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or unusable inputs named by the user: reported in one line, exit status 2."""


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value
