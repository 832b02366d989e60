"""The ``ecash`` command on a pseudo-terminal, as a person at a keyboard runs it.

Prompts (a hidden passphrase, a confirmation) appear only when standard input
is a terminal, so they can be tested only on one: :func:`spawn` starts the
command in a new session whose controlling terminal is a pty (``pty.fork``),
and :class:`Session` reads what it shows and types answers, like ``expect``.
"""

from __future__ import annotations

import os
import pty
import re
import select
import time
from pathlib import Path

from .kit import ECASH


class Session:
    """A running command on a pty: :meth:`expect` what it shows, :meth:`send` keys."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd
        self.seen = ""  # everything shown so far (stdout and stderr: one terminal)
        self._unread = 0  # where the next expect starts looking

    def _read(self, deadline: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the child closed the terminal (EIO on Linux)
            return False
        if not chunk:
            return False
        self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return True

    def expect(self, pattern: str, timeout: float = 60) -> re.Match:
        """Wait until the output after the last match matches ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern).search(self.seen, self._unread)
            if found:
                self._unread = found.end()
                return found
            if time.monotonic() > deadline or not self._read(deadline):
                raise AssertionError(f"never saw {pattern!r}; the terminal shows:\n{self.seen}")

    def send(self, line: str) -> None:
        os.write(self.fd, (line + "\r").encode())

    def wait(self, timeout: float = 60) -> int:
        """The exit code, once the command ends (reading the rest of its output)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(min(deadline, time.monotonic() + 0.2))
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                while self._read(time.monotonic() + 0.2):
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"still running after {timeout} s:\n{self.seen}")


def spawn(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Session:
    """``ecash ARGS`` on a new pty (its controlling terminal), 200 columns wide."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its terminal
        try:
            if cwd is not None:
                os.chdir(cwd)
            os.execve(str(ECASH), [str(ECASH), *args], {**env, "COLUMNS": "200",
                                                         "TERM": "dumb"})
        finally:
            os._exit(127)
    return Session(pid, fd)
