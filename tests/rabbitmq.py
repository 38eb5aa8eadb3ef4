"""A private, throwaway rabbitmq-server for the tests that run Celery on RabbitMQ.

The node keeps everything in its own directory (database, logs, config, the
Erlang cookie in a HOME of its own) under its own node name, AMQP port and
distribution port, so it never meets the machine's RabbitMQ. Only epmd, the
Erlang port mapper on 4369, is shared: every node on a host registers there.
"""

import os
import secrets
import shutil
import signal
import string
import subprocess
from pathlib import Path

import amqp

from config.redis_server import free_port
from tests.stack import wait_for

# RabbitMQ closes the channel of a consumer that holds a delivery unacknowledged
# longer than this (30 minutes by default), and with acks_late a task is
# unacknowledged for as long as it runs; the README tells operators to raise it.
CONSUMER_TIMEOUT_MS = 2 * 3600 * 1000


def scripts_dir() -> Path | None:
    """Where the server's own scripts are, or None when RabbitMQ is not installed.

    Debian's /usr/sbin/rabbitmq-server is a wrapper that switches to the
    `rabbitmq` user (and so to that user's HOME and cookie); the scripts it
    wraps take our environment as it is. Elsewhere PATH has the real ones.
    """
    debian = Path("/usr/lib/rabbitmq/bin")
    if (debian / "rabbitmq-server").exists():
        return debian
    found = shutil.which("rabbitmq-server")
    return Path(found).parent if found else None


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


class RabbitMQServer:
    """A rabbitmq-server child process with its own node, ports and files."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.scripts = scripts_dir()
        self.port, self.dist_port = two_free_ports()
        self.node = f"test-{secrets.token_hex(4)}@localhost"
        self.user = "notify"
        self.password = secrets.token_urlsafe(16)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        # The trailing "//" names the default virtual host, "/".
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}//"

    @property
    def env(self) -> dict[str, str]:
        """The environment of the server and of rabbitmqctl calls to it: nothing
        inherited, so no RABBITMQ_* of the caller's (or the machine's
        rabbitmq-env.conf) can point it elsewhere."""
        base = self.workdir
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(base / "home"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            # Erlang distribution (how rabbitmqctl talks to the node) on loopback only.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _write_files(self) -> None:
        base = self.workdir
        (base / "home").mkdir(parents=True, exist_ok=True)
        (base / "mnesia").mkdir(exist_ok=True)
        (base / "log").mkdir(exist_ok=True)
        cookie = base / "home" / ".erlang.cookie"
        cookie.write_text("".join(secrets.choice(string.ascii_uppercase) for _ in range(32)))
        cookie.chmod(0o400)  # Erlang refuses a cookie others can read
        (base / "rabbitmq-env.conf").write_text("")
        (base / "enabled_plugins").write_text("[].\n")  # no management plugin, no HTTP port
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            f"default_user = {self.user}\n"
            f"default_pass = {self.password}\n"
            f"consumer_timeout = {CONSUMER_TIMEOUT_MS}\n"
        )

    def answers(self) -> bool:
        """True once the node accepts a login (its listener, user and vhost are up)."""
        connection = amqp.Connection(
            f"127.0.0.1:{self.port}",
            userid=self.user,
            password=self.password,
            connect_timeout=1,
        )
        try:
            connection.connect()
        except (OSError, amqp.exceptions.AMQPError):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"rabbitmq-server exited; see {self.workdir / 'server.log'}"
                ) from None
            return False
        connection.close()
        return True

    def start(self, timeout: float = 90) -> "RabbitMQServer":
        self._write_files()
        with open(self.workdir / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(self.scripts / "rabbitmq-server")],
                cwd=self.workdir,  # where an Erlang crash dump would land
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, for stop() to end it all
            )
        # Booting takes several seconds (longer on a busy machine).
        wait_for(self.answers, timeout, f"rabbitmq-server {self.node}", interval=0.2)
        return self

    def ctl(self, *args: str) -> str:
        """Run `rabbitmqctl -n <node> args` against this node; returns its output."""
        result = subprocess.run(
            [str(self.scripts / "rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    def stop(self) -> None:
        """Stop the node: the start script turns SIGTERM into a clean shutdown."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                # The script and the Erlang VM it started, which outlive a killed script.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
