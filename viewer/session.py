"""Session persistence: the viewer's state as JSON in the user's config folder, written atomically.

Where: $EPIGRAF_STUDIO_CONFIG_DIR, else $XDG_CONFIG_HOME/epigraf-studio, else
~/.config/epigraf-studio; the file is session.json. A missing file starts from defaults; a corrupt
or foreign one is ignored with one warning (and left in place for the user to inspect).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from core.fileio import atomic_write_text

from .state import ViewerState, state_from_dict, state_to_dict

APP_DIR_NAME = "epigraf-studio"
SESSION_FILE = "session.json"


def config_dir() -> Path:
    """The viewer's config folder (not created)."""
    if os.environ.get("EPIGRAF_STUDIO_CONFIG_DIR"):
        return Path(os.environ["EPIGRAF_STUDIO_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / APP_DIR_NAME


def session_path() -> Path:
    return config_dir() / SESSION_FILE


def save_session(state: ViewerState, path: Path | None = None) -> Path:
    """Write the state atomically; returns the path written."""
    path = path or session_path()
    atomic_write_text(path, json.dumps(state_to_dict(state), indent=2, sort_keys=True))
    return path


def load_session(path: Path | None = None, warn=None) -> ViewerState:
    """The saved state, or defaults when there is none; problems are reported through `warn` (one line each)."""
    path = path or session_path()
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    if not path.exists():
        return ViewerState()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        warn(f"ignoring the unreadable session file '{path}' ({type(e).__name__}); starting from defaults")
        return ViewerState()
    if not isinstance(data, dict):
        warn(f"ignoring the session file '{path}': it does not hold a JSON object; starting from defaults")
        return ViewerState()
    problems: list[str] = []
    state = state_from_dict(data, problems)
    if problems:
        warn(f"session file '{path}': {'; '.join(problems[:3])}" + (" ..." if len(problems) > 3 else ""))
    return state
