"""A private Redis Sentinel cluster for tests: a primary, a replica and three sentinels.

Sentinels decide quickly here (a primary silent for DOWN_AFTER_MS is down), so
a test can kill the primary and see the replica promoted within seconds.
"""

import subprocess
from pathlib import Path

import redis

from config.redis_server import RedisServer, answers, binary, free_port
from tests.stack import wait_for

MASTER = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
SENTINEL_CONFIG = """\
port {port}
bind 127.0.0.1
dir {dir}
logfile sentinel.log
sentinel monitor {master} 127.0.0.1 {primary} 2
sentinel down-after-milliseconds {master} {down_after}
sentinel failover-timeout {master} {failover_timeout}
sentinel parallel-syncs {master} 1
"""


class SentinelProcess:
    """One sentinel on a free port; it rewrites its own config file, so each has one."""

    def __init__(self, workdir: Path, primary_port: int) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.primary_port = primary_port
        self.process: subprocess.Popen | None = None

    def start(self) -> "SentinelProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "sentinel.conf"
        config.write_text(
            SENTINEL_CONFIG.format(
                port=self.port,
                dir=self.workdir,
                master=MASTER,
                primary=self.primary_port,
                down_after=DOWN_AFTER_MS,
                failover_timeout=FAILOVER_TIMEOUT_MS,
            )
        )
        # redis-server in sentinel mode: the same program Debian's redis-sentinel
        # package starts, so the tests need no package beyond redis-server.
        self.process = subprocess.Popen(
            [binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL
        )
        wait_for(lambda: answers("127.0.0.1", self.port), 10, f"sentinel on {self.port}")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class SentinelCluster:
    """A primary, one replica of it and three sentinels watching them (quorum 2)."""

    def __init__(self, workdir: Path) -> None:
        self.primary = RedisServer(workdir / "redis-a")
        self.replica = RedisServer(
            workdir / "redis-b", options=("--replicaof", "127.0.0.1", str(self.primary.port))
        )
        self.sentinels = [
            SentinelProcess(workdir / f"sentinel-{n}", self.primary.port) for n in range(3)
        ]

    @property
    def addresses(self) -> str:
        """The sentinels as REDIS_SENTINELS takes them: host:port,host:port,..."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def start(self) -> "SentinelCluster":
        self.primary.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        wait_for(self._ready, 30, "the replica in sync and every sentinel knowing the others")
        return self

    def _ready(self) -> bool:
        """A failover can happen: the replica is in sync and each sentinel knows it
        and the two other sentinels (which they find through the primary)."""
        info = redis.Redis(port=self.replica.port).info("replication")
        if info.get("master_link_status") != "up":
            return False
        for sentinel in self.sentinels:
            state = sentinel.client().sentinel_master(MASTER)
            if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                return False
        return True

    def primary_port(self) -> set[int]:
        """The primary's port as each sentinel names it (one element once they agree)."""
        return {
            int(sentinel.client().sentinel_get_master_addr_by_name(MASTER)[1])
            for sentinel in self.sentinels
        }

    def kill_primary(self) -> None:
        """SIGKILL the primary, as when its machine dies."""
        self.primary.process.kill()
        self.primary.process.wait()

    def wait_for_failover(self, timeout: float = 30) -> None:
        """Until every sentinel names the replica as primary and it acts as one."""

        def promoted() -> bool:
            role = redis.Redis(port=self.replica.port).role()[0]
            return self.primary_port() == {self.replica.port} and role in (b"master", "master")

        wait_for(promoted, timeout, "the sentinels to promote the replica")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.replica.stop()
        self.primary.stop()
