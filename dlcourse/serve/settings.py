"""Every default of ``dlcourse serve``, in one place (the command line reads them from here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"  # behind a reverse proxy for TLS (docs/serve.md); 0.0.0.0 only on a trusted network
    port: int = 8765  # 0: any free port (the command prints the one it got)
    database: str = ""  # SQLAlchemy URL; default sqlite:///<course>/serve/serve.db
    state_dir: str = ""  # default <course>/serve: hand-in files, work folders, the cookie secret
    max_upload_mb: float = 50.0
    uploads_per_minute: int = 6  # per student; more are answered 429
    workers: int | None = None  # hand-ins graded at once (default: one per core)
