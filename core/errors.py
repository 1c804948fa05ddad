"""One exception type for mistakes a user can fix, and the CLI wrapper that prints it as one line."""

from __future__ import annotations

import functools
import sys
from typing import Callable


class UserError(Exception):
    """A problem with the user's input (path, file, option); its message says what to do."""


def cli_main(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a CLI entry point: a UserError becomes 'error: ...' on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> int:
        try:
            return fn(*args, **kwargs) or 0
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # a path that cannot be made or written: one line, not a traceback
            where = f"'{e.filename}': " if e.filename else ""
            print(f"error: {where}{e.strerror or e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper
