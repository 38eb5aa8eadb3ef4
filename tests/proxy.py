"""A private nginx serving the example config of deploy/nginx/ in front of a Stack.

The files there carry an operator's values (ports 80 and 443, Daphne on
127.0.0.1:8000, paths under /etc and /srv). The copy a test runs has each of
those swapped for its own (free ports, the stack's Daphne, its directory), and
a value that is not found exactly once fails the test: the shipped file and
the tested one differ in those values only. nginx keeps its pid, logs and
temporary files in its own directory and touches nothing under /etc or /var.
"""

import os
import signal
import socket
import subprocess
from pathlib import Path

from config.redis_server import free_port
from tests.stack import BASE_DIR, Stack, wait_for

NGINX = Path("/usr/sbin/nginx")
DEPLOY = BASE_DIR / "deploy" / "nginx"

# The top of an nginx.conf, which the operator's nginx already has: it
# includes the site files as Debian's includes sites-enabled/. The log is at
# info, where nginx tells of a socket it closed for a timeout.
MAIN = """\
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{
    worker_connections 512;
}}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/temp/client_body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
{includes}
}}
"""


def render(name: str, changes: dict[str, str]) -> str:
    """deploy/nginx/<name> with each key replaced by its value; each must occur once."""
    text = (DEPLOY / name).read_text()
    for old, new in changes.items():
        assert text.count(old) == 1, f"{name} should hold {old!r} exactly once"
        text = text.replace(old, new)
    return text


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, valid a day, and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class Front:
    """nginx on the shipped config in front of the stack's first Daphne.

    With `certificate` (cert, key) the TLS server of notify-tls.conf runs too;
    `locations` changes lines of notify-locations.conf, as `render` does.
    """

    def __init__(
        self,
        stack: Stack,
        name: str,
        *,
        certificate: tuple[Path, Path] | None = None,
        locations: dict[str, str] | None = None,
    ) -> None:
        self.stack = stack
        self.dir = stack.workdir / name
        self.static = self.dir / "static"
        self.port = free_port()
        self.tls_port = free_port() if certificate else None
        self.certificate = certificate
        self.locations = locations or {}
        self.process: subprocess.Popen | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def base_url(self) -> str:
        """Where a browser goes: the https server when there is one."""
        return self.https_url if self.tls_port else self.http_url

    def error_log(self) -> str:
        return (self.dir / "error.log").read_text(errors="replace")

    def _write_config(self) -> Path:
        (self.dir / "temp").mkdir(parents=True)
        (self.dir / "snippets").mkdir()
        self.static.mkdir()
        files = {
            "notify.conf": render(
                "notify.conf",
                {
                    "listen 80;": f"listen 127.0.0.1:{self.port};",
                    "server 127.0.0.1:8000;": f"server 127.0.0.1:{self.stack.ports['daphne']};",
                },
            ),
            "snippets/notify-locations.conf": render(
                "notify-locations.conf",
                {"alias /srv/notify/staticfiles/;": f"alias {self.static}/;", **self.locations},
            ),
        }
        if self.certificate:
            cert, key = self.certificate
            live = "/etc/letsencrypt/live/notify.example.com"
            files["notify-tls.conf"] = render(
                "notify-tls.conf",
                {
                    "listen 443 ssl;": f"listen 127.0.0.1:{self.tls_port} ssl;",
                    f"{live}/fullchain.pem;": f"{cert};",
                    f"{live}/privkey.pem;": f"{key};",
                },
            )
        for path, text in files.items():
            (self.dir / path).write_text(text)
        includes = "".join(f"    include {path};\n" for path in files if "/" not in path)
        # As root, the master would hand its workers to `nobody`, who may not
        # read this private directory; as anyone else the directive is ignored.
        user = "user root;\n" if os.geteuid() == 0 else ""
        main = self.dir / "nginx.conf"
        main.write_text(MAIN.format(user=user, dir=self.dir, includes=includes.rstrip("\n")))
        return main

    def start(self) -> "Front":
        config = self._write_config()
        # -e: the log for what happens before the config is read (else /var/log/nginx).
        command = [str(NGINX), "-p", str(self.dir), "-c", str(config), "-e", "error.log"]
        with open(self.dir / "nginx.out", "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            for port in filter(None, (self.port, self.tls_port)):
                wait_for(lambda port=port: self._listening(port), 10, f"nginx on port {port}")
        except BaseException:
            self.stop()
            raise
        return self

    def _listening(self, port: int) -> bool:
        if self.process.poll() is not None:
            output = (self.dir / "nginx.out").read_text(errors="replace")
            raise RuntimeError(f"nginx exited:\n{output}{self.error_log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        # SIGTERM is nginx's fast shutdown: open sockets are cut, not waited for.
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)

    def __enter__(self) -> "Front":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
