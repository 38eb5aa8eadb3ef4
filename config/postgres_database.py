"""A database of one's own on a PostgreSQL server, for the tests and the benchmark.

Created under a random name and dropped afterwards, so nothing ever touches a
database it did not create.
"""

import secrets
import urllib.parse

import psycopg
from psycopg import sql

# Where the tests and the benchmark look for a server when asked to (CI's default).
DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"


def answers(server_url: str) -> bool:
    """Whether a PostgreSQL server accepts us at `server_url` (within 3 s)."""
    try:
        admin = urllib.parse.urlsplit(server_url)._replace(path="/postgres").geturl()
        psycopg.connect(admin, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


class PostgresDatabase:
    def __init__(self, server_url: str, prefix: str = "e2e") -> None:
        self.name = f"{prefix}_{secrets.token_hex(6)}"
        server = urllib.parse.urlsplit(server_url)
        self.admin_url = server._replace(path="/postgres").geturl()
        self.url = server._replace(path=f"/{self.name}").geturl()

    def create(self) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return self.url

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )
