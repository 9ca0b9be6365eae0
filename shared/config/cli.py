"""Settings for console scripts (grantline-replay, grantline-migrate, …).

A tool run by hand must never talk to the wrong database. So: the environment first; when it
names no database, the `.grantline/env` that `make up` wrote (looked for in the working
directory and its parents, or at GRANTLINE_HOME); and when neither does, one sentence and a
non-zero exit rather than a default DSN. The tool says which database and broker it uses,
without the password, before it does anything.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from shared.config.settings import Settings


class ToolError(SystemExit):
    """One sentence for the person at the terminal, exit status 2."""

    def __init__(self, tool: str, sentence: str) -> None:
        super().__init__(2)
        self.sentence = f"{tool}: {sentence}"


def read_env_file(path: Path) -> dict[str, str]:
    """`export NAME=value` (or `NAME=value`) lines, shell-quoted; comments and blanks skipped."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, raw = line.partition("=")
        if not sep or not name.replace("_", "").isalnum():
            continue
        words = shlex.split(raw) if raw else []
        values[name] = words[0] if words else ""
    return values


def find_env_file(start: Path | None = None) -> Path | None:
    home = os.environ.get("GRANTLINE_HOME")
    if home:
        candidate = Path(home) / "env"
        return candidate if candidate.is_file() else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".grantline" / "env"
        if candidate.is_file():
            return candidate
    return None


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def tool_settings(tool: str, *, needs_broker: bool = False, quiet: bool = False) -> Settings:
    """The settings `tool` runs with; prints where they point (stderr) unless `quiet`."""
    source = "the environment"
    if not (os.environ.get("DATABASE_URL") or os.environ.get("GRANTLINE_DATABASE_URL")):
        env_file = find_env_file()
        if env_file is None:
            raise ToolError(
                tool,
                "no database given: set DATABASE_URL, or run it where `make up` wrote .grantline/env "
                "(or `. .grantline/env` first).",
            )
        for name, value in read_env_file(env_file).items():
            os.environ.setdefault(name, value)
        source = str(env_file)
    settings = Settings()
    if not settings.database_url:
        raise ToolError(tool, f"{source} names no DATABASE_URL.")
    if needs_broker and not settings.kafka_bootstrap_servers:
        raise ToolError(tool, f"{source} names no KAFKA_BOOTSTRAP_SERVERS.")
    if not quiet:
        print(
            f"{tool}: database {without_password(settings.database_url)}, "
            f"broker {settings.kafka_bootstrap_servers} (from {source})",
            file=sys.stderr,
        )
    return settings


def run_tool(tool: str, main: Callable[[], int]) -> int:
    """Runs `main`, turning a ToolError into its one sentence on stderr."""
    try:
        return main()
    except ToolError as exc:
        print(exc.sentence, file=sys.stderr)
        return int(exc.code or 2)
