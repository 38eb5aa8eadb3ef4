"""A client process: many authenticated WebSocket connections on one asyncio loop.

The orchestrator drives it over a pipe. Each received notification that
carries the benchmark's stamp is recorded with its latency: the publisher put
time.monotonic() into the notification's data, and the kernel's monotonic clock
is shared by every process on the host, so receive - sent is one clock.
"""

import asyncio
import json
import random
import resource
import time
from multiprocessing.connection import Connection

import websockets
from websockets.asyncio.client import connect

monotonic = time.monotonic
# A resuming socket retries as transport.js does: jittered backoff from 1 s, capped.
RETRY_BASE, RETRY_CAP, RETRIES = 1.0, 30.0, 8


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Clients:
    def __init__(self) -> None:
        self.sockets: dict[int, websockets.ClientConnection] = {}
        self.readers: set[asyncio.Task] = set()
        # (phase, seq, user_id, latency seconds), appended by the readers.
        self.records: list[tuple[int, int, int, float]] = []
        self.hellos = 0
        self.unexpected_closes: list[tuple[int, int | None]] = []
        # Sockets this process is closing on purpose (their readers must not count them).
        self.closing: set[int] = set()
        # The newest notification id each user's socket has seen (hello's last_id
        # or a notification's id): where a reconnect resumes with ?after=.
        self.last_id: dict[int, int] = {}
        # The size of a notification frame, by phase (the broadcast floor writes as many bytes).
        self.frame_bytes: dict[int, int] = {}

    async def read(self, user_id: int, ws: websockets.ClientConnection) -> None:
        try:
            async for raw in ws:
                now = monotonic()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "notification":
                    stamp = (message.get("data") or {}).get("bench")
                    if stamp:
                        self.records.append((stamp["p"], stamp["s"], user_id, now - stamp["t"]))
                        self.frame_bytes[stamp["p"]] = len(raw)
                    if "id" in message:
                        self.last_id[user_id] = max(self.last_id.get(user_id, 0), message["id"])
                elif kind == "hello":
                    self.hellos += 1
                    last = message.get("last_id") or 0
                    self.last_id[user_id] = max(self.last_id.get(user_id, 0), last)
        except websockets.ConnectionClosed:
            pass
        finally:
            if id(ws) in self.closing:
                self.closing.discard(id(ws))
            else:
                self.unexpected_closes.append((user_id, ws.close_code))
                if self.sockets.get(user_id) is ws:
                    del self.sockets[user_id]

    async def connect_all(
        self,
        url: str,
        origin: str,
        users: list[tuple[int, str]],
        concurrency: int,
        resume: bool = False,
    ) -> dict:
        """Open one socket per (user_id, session_key), `concurrency` handshakes at a time;
        with `resume`, each asks for what it missed (`?after=` its newest id seen)
        and a refused or failed handshake is tried again as the page's client does."""
        limit = asyncio.Semaphore(concurrency)
        durations: list[float] = []
        errors: list[str] = []
        given_up: list[int] = []

        async def one(user_id: int, session_key: str) -> None:
            target = f"{url}?after={self.last_id.get(user_id, 0)}" if resume else url
            for attempt in range(RETRIES if resume else 1):
                if attempt:
                    # As the page's client does: backoff with jitter, 0.5-1 s first.
                    ceiling = min(RETRY_CAP, RETRY_BASE * 2 ** (attempt - 1))
                    await asyncio.sleep(ceiling / 2 + random.random() * ceiling / 2)
                async with limit:
                    began = monotonic()
                    try:
                        ws = await connect(
                            target,
                            origin=origin,
                            additional_headers={"Cookie": f"sessionid={session_key}"},
                            # Pings from thousands of bench clients would load the
                            # server we measure; Daphne pings them itself.
                            ping_interval=None,
                            compression=None,
                            open_timeout=60,
                            close_timeout=5,
                            max_queue=None,
                        )
                    except Exception as exc:  # refused, timed out: counted, not hidden
                        errors.append(repr(exc)[:200])
                        continue
                durations.append(monotonic() - began)
                self.sockets[user_id] = ws
                task = asyncio.create_task(self.read(user_id, ws))
                self.readers.add(task)
                task.add_done_callback(self.readers.discard)
                return
            given_up.append(user_id)

        began = monotonic()
        await asyncio.gather(*(one(u, k) for u, k in users))
        return {
            "ok": len(durations),
            "failed": len(given_up),
            "retried": len(errors) - len(given_up),
            "errors": errors[:5],
            "seconds": monotonic() - began,
            "durations": durations,
        }

    async def close_all(self) -> dict:
        """Close every socket, and start counting unexpected closes afresh."""
        sockets = list(self.sockets.values())
        self.closing.update(id(ws) for ws in sockets)
        limit = asyncio.Semaphore(500)

        async def one(ws: websockets.ClientConnection) -> None:
            async with limit:
                try:
                    await asyncio.wait_for(ws.close(), 10)
                except Exception:
                    ws.transport.abort()

        await asyncio.gather(*(one(ws) for ws in sockets))
        # Let the readers see their sockets closed before the count is reset.
        await asyncio.sleep(0.2)
        self.sockets.clear()
        self.unexpected_closes.clear()
        return {"closed": len(sockets)}

    async def drop_all(self) -> dict:
        """Cut every socket at once, as a network failure or a server restart does:
        no WebSocket close handshake, the connections just end."""
        sockets = list(self.sockets.values())
        self.closing.update(id(ws) for ws in sockets)
        for ws in sockets:
            ws.transport.abort()
        await asyncio.sleep(0.2)
        self.sockets.clear()
        self.unexpected_closes.clear()
        return {"dropped": len(sockets)}

    def take(self) -> list[tuple[int, int, int, float]]:
        records, self.records = self.records, []
        return records

    def status(self) -> dict:
        return {
            "open": len(self.sockets),
            "records": len(self.records),
            "hellos": self.hellos,
            "unexpected_closes": len(self.unexpected_closes),
            "close_codes": sorted({str(code) for _, code in self.unexpected_closes}),
        }


async def serve(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    clients = Clients()
    while True:
        command, *args = await loop.run_in_executor(None, pipe.recv)
        if command == "connect":
            reply = await clients.connect_all(*args)
        elif command == "status":
            reply = clients.status()
        elif command == "connected":
            reply = sorted(clients.sockets)
        elif command == "take":
            reply = clients.take()
        elif command == "frame_bytes":
            reply = clients.frame_bytes
        elif command == "drop":
            reply = await clients.drop_all()
        elif command == "close":
            reply = await clients.close_all()
        elif command == "stop":
            await clients.close_all()
            pipe.send({"stopped": True})
            return
        else:
            reply = {"error": f"unknown command {command!r}"}
        pipe.send(reply)


def main(pipe: Connection) -> None:
    """Entry point of a client process (multiprocessing, spawn)."""
    raise_fd_limit()
    asyncio.run(serve(pipe))
