"""Process inspection for the service tests: what is still running after a stop."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require(*programs: str) -> None:
    missing = [
        p for p in programs if not (os.path.isabs(p) and os.access(p, os.X_OK)) and not shutil.which(p)
    ]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgrp) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2])


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def alive(pid: int) -> bool:
    """Running, not a zombie (this container's PID 1 does not reap orphans)."""
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group."""
    members = []
    for pid in _all_pids():
        st = _stat(pid)
        if st is not None and st[2] == pgid and st[0] != "Z":
            members.append(pid)
    return members


def descendants(pid: int) -> set[int]:
    """pid and every live process below it, whatever group or session it moved to."""
    children: dict[int, list[int]] = {}
    for candidate in _all_pids():
        st = _stat(candidate)
        if st is not None:
            children.setdefault(st[1], []).append(candidate)
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        todo.extend(children.get(current, []))
    return {p for p in found if alive(p)}


def processes_matching(text: str) -> list[int]:
    """Live processes whose command line contains `text` (a fixed string, unlike pgrep -f)."""
    found = []
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and alive(pid):
            found.append(pid)
    return found


def pgrep_exact(name: str) -> set[int]:
    """`pgrep -x NAME`, zombies excluded."""
    done = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
    return {int(line) for line in done.stdout.split() if alive(int(line))}
