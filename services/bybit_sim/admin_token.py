"""Where the admin API's token comes from: `BYBIT_SIM_ADMIN_TOKEN`, or a token file (read, or created
0600 with a new random token), never the command line (it would show in `ps`)."""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

TOKEN_ENV = "BYBIT_SIM_ADMIN_TOKEN"
TOKEN_FILE_ENV = "BYBIT_SIM_ADMIN_TOKEN_FILE"


def read_token_file(path: Path) -> str | None:
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    return token or None


def write_token_file(path: Path, token: str) -> None:
    """Created 0600 from the start (never readable by others, not even briefly), then moved into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates files 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_token(env: dict[str, str], token_file: Path | None) -> str:
    """The environment's token, else the file's, else a new one written to the file (when one is given)."""
    token = env.get(TOKEN_ENV, "").strip()
    if token:
        return token
    if token_file is not None:
        existing = read_token_file(token_file)
        if existing:
            return existing
    token = secrets.token_urlsafe(32)
    if token_file is not None:
        write_token_file(token_file, token)
    return token
