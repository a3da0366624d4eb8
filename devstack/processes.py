"""Waiting on a process we started: its HTTP answer, or the end of its log when it does not come."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests


def wait_http(url: str, proc: subprocess.Popen | None = None, log: Path | None = None, timeout: float = 90,
              verify: bool | str = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}:\n{tail(log) if log else ''}")
        try:
            if requests.get(url, timeout=3, allow_redirects=False, verify=verify).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout}s:\n{tail(log) if log else ''}")


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
