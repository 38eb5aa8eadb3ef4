"""A real SMTP server process (aiosmtpd) that keeps every message it accepts in a maildir."""

import email.policy
import mailbox
import socket
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from config.redis_server import free_port
from tests.stack import wait_for


class SmtpServer:
    def __init__(self, workdir: Path) -> None:
        self.maildir = workdir / "maildir"
        self.log = workdir / "smtp.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> "SmtpServer":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "aiosmtpd",
                    "-n",
                    "-l",
                    f"127.0.0.1:{self.port}",
                    "-c",
                    "aiosmtpd.handlers.Mailbox",
                    str(self.maildir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._greets, 20, "the SMTP server to greet")
        return self

    def _greets(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError("the SMTP server exited:\n" + self.log.read_text())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                return sock.recv(3) == b"220"
        except OSError:
            return False

    def messages(self) -> list[EmailMessage]:
        """Every message that arrived, oldest first."""
        box = mailbox.Maildir(self.maildir, create=False)
        parsed = []
        for key in sorted(box.keys(), key=arrival):
            with box.get_file(key) as f:
                parsed.append(email.message_from_binary_file(f, policy=email.policy.default))
        return parsed

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if m["To"] == address]

    def clear(self) -> None:
        mailbox.Maildir(self.maildir, create=False).clear()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def arrival(key: str) -> tuple[int, int, int]:
    """A maildir key's time, microseconds and delivery count ("<s>.M<us>P<pid>Q<n>.<host>")."""
    seconds, unique = key.split(".")[:2]
    micros, rest = unique[1:].split("P", 1)
    return int(seconds), int(micros), int(rest.split("Q", 1)[1])
