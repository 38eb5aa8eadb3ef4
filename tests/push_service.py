"""A stand-in push service (RFC 8030) and browser subscriptions, for the Web Push tests.

The service is a real HTTP server. It accepts a push only as a browser's push
service would: a VAPID token (RFC 8292) signed with the server's key for this
origin, not expired, with a contact; an aes128gcm body (RFC 8188) within 4,096
bytes. It then decrypts the message (RFC 8291) with the private key and auth
secret the test's "browser" made, independently of the library that sent it,
and keeps what it read. Each endpoint answers the statuses it is told to, then 201.
"""

import base64
import hashlib
import hmac
import json
import os
import struct
import threading
import time
import urllib.request
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.stack import Browserless, Stack


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@dataclass
class Browser:
    """What a browser's pushManager.subscribe() makes: a P-256 key pair and an auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def subscription(self) -> dict:
        """As PushSubscription.toJSON() gives it to the page."""
        return {
            "endpoint": self.endpoint,
            "keys": {
                "p256dh": b64url(_uncompressed(self.private_key.public_key())),
                "auth": b64url(self.auth_secret),
            },
        }

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 (keys from ECDH and the auth secret) over RFC 8188 aes128gcm."""
        salt, record_size, id_length = body[:16], *struct.unpack("!IB", body[16:21])
        server_public = body[21 : 21 + id_length]
        ciphertext = body[21 + id_length :]
        assert len(ciphertext) <= record_size, "one record expected"
        shared = self.private_key.exchange(
            ec.ECDH(),
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), server_public),
        )
        browser_public = _uncompressed(self.private_key.public_key())
        prk_key = _hmac(self.auth_secret, shared)
        ikm = _hmac(prk_key, b"WebPush: info\x00" + browser_public + server_public + b"\x01")
        prk = _hmac(salt, ikm)
        cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
        nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
        plaintext, delimiter = padded.rstrip(b"\x00")[:-1], padded.rstrip(b"\x00")[-1:]
        assert delimiter == b"\x02", "the last record ends with the 0x02 delimiter"
        return plaintext


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


class PushService:
    """The stand-in: `push_url(token)` is an endpoint; `received[token]` what it
    accepted (decrypted JSON), `refused` the reason for each request it refused
    (a test asserts that stays empty), `answer(token, 500, ...)` queues statuses."""

    def __init__(self, vapid_public_key: str, subject_prefix: str = "mailto:") -> None:
        self.vapid_public_key = vapid_public_key
        self.subject_prefix = subject_prefix
        self.browsers: dict[str, Browser] = {}
        self.received: dict[str, list[dict]] = defaultdict(list)
        self.plaintexts: dict[str, list[bytes]] = defaultdict(list)  # as the browser reads them
        self.attempts: dict[str, int] = defaultdict(int)
        self.refused: list[str] = []
        self.statuses: dict[str, deque[int | tuple[int, str]]] = defaultdict(deque)
        self.held: set[str] = set()
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def browser(self, token: str) -> Browser:
        """A new browser subscribed at this service under `token`."""
        self.browsers[token] = Browser(f"{self.origin}/push/{token}")
        return self.browsers[token]

    def answer(self, token: str, *statuses: int) -> None:
        self.statuses[token].extend(statuses)

    def redirect(self, token: str, status: int, location: str) -> None:
        """Answer the next request to `token` with a redirect to `location`."""
        self.statuses[token].append((status, location))

    def hold(self, token: str) -> None:
        """Keep requests to `token` unanswered until `release()` (a slow service)."""
        self.held.add(token)

    def release(self) -> None:
        self.released.set()

    def count(self, token: str) -> int:
        with self.lock:
            return len(self.received[token])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = service._take(self.path, self.headers, body)
                status, location = status if isinstance(status, tuple) else (status, None)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        return Handler

    def _take(self, path: str, headers, body: bytes) -> int | tuple[int, str]:
        token = path.removeprefix("/push/")
        with self.lock:
            self.attempts[token] += 1
        if token in self.held:
            self.released.wait(30)
        with self.lock:
            if token not in self.browsers:
                return 404
            reason = self._refusal(headers, body)
            if reason:
                self.refused.append(reason)
                return 403 if "VAPID" in reason else 400
            if self.statuses[token]:
                return self.statuses[token].popleft()
            plaintext = self.browsers[token].decrypt(body)
            self.plaintexts[token].append(plaintext)
            self.received[token].append(json.loads(plaintext))
            return 201

    def _refusal(self, headers, body: bytes) -> str | None:
        """Why a real push service would refuse this request, or None."""
        if headers.get("Content-Encoding") != "aes128gcm":
            return f"Content-Encoding {headers.get('Content-Encoding')!r}"
        if "TTL" not in headers:
            return "no TTL header"
        if len(body) > 4096:
            return f"{len(body)} bytes is over 4096"
        auth = headers.get("Authorization", "")
        if not auth.startswith("vapid "):
            return f"VAPID: no vapid Authorization ({auth[:20]!r})"
        params = dict(part.strip().split("=", 1) for part in auth[6:].split(","))
        if params.get("k") != self.vapid_public_key.rstrip("="):
            return "VAPID: k is not the server's public key"
        head, claims, signature = params.get("t", "..").split(".")
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), unb64url(self.vapid_public_key)
        )
        raw = unb64url(signature)
        if len(raw) != 64:
            return "VAPID: ES256 signature is not 64 bytes"
        der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
        try:
            key.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        except Exception:
            return "VAPID: bad signature"
        if json.loads(unb64url(head)).get("alg") != "ES256":
            return "VAPID: alg is not ES256"
        claims = json.loads(unb64url(claims))
        if claims.get("aud") != self.origin:
            return f"VAPID: aud {claims.get('aud')!r} is not {self.origin}"
        if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
            return "VAPID: exp not within the next 24 hours"
        if not str(claims.get("sub", "")).startswith(self.subject_prefix):
            return f"VAPID: sub {claims.get('sub')!r}"
        return None


class Recorder:
    """Any local server a redirect could point at: keeps every request it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                recorder.requests.append((self.command, self.path))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _record

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# On the real stack (tests/stack.py).


def call(session: Browserless, method: str, path: str, body: dict | None = None) -> dict:
    """A JSON API call with the session's cookies and CSRF token."""
    request = urllib.request.Request(
        session.base_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "X-CSRFToken": session.cookies.get("csrftoken", ""),
            "Referer": session.base_url + "/",
        },
    )
    with session.opener.open(request, timeout=10) as response:
        return json.load(response)


def register(stack: Stack, service: PushService, username: str) -> Browserless:
    """Sign in and register a browser's subscription through the API, as push.js does."""
    session = Browserless(stack, username)
    browser = service.browser(username)
    call(session, "POST", "/api/notifications/push/subscriptions/", browser.subscription)
    return session


def push_tasks_done(stack: Stack) -> int:
    """Tasks the stack's worker has finished (each notify() with push on runs one)."""
    return stack.log("worker").count("] succeeded")


def notify(stack: Stack, username: str, title: str, **options: str) -> None:
    args = [f"--{name}={value}" for name, value in options.items()]
    stack.manage("notify", title, "--user", username, *args)
