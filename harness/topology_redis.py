"""The Redis ACL allow-list of one component user (`[redis.acl.<user>]`), and what no list may name."""

from __future__ import annotations

import re

from pydantic import field_validator

from harness.topology_model import TableModel

# Commands no component user may be allowed, whatever its allow-list says: each reaches beyond the user's key
# patterns (they take no key, so `~prefix*` cannot confine them) to destroy, list or reconfigure what is not
# the user's. The ones an ACL cannot otherwise hide are why the app keeps index keys instead of scanning.
REDIS_NEVER_ALLOWED: dict[str, str] = {
    "flushall": "empties every database",
    "flushdb": "empties the whole database, every namespace",
    "swapdb": "swaps databases: db 0 is emptied for everyone, like FLUSHDB",
    "keys": "lists key names of every namespace (an ACL cannot confine it): keep an index key instead",
    "scan": "lists key names of every namespace (an ACL cannot confine it): keep an index key instead",
    "randomkey": "names a key of any namespace",
    "script|flush": "drops every user's cached scripts",
    "script|kill": "kills another client's script",
    "function": "functions are shared by every user (FUNCTION FLUSH/DELETE/RESTORE reach all of them)",
    "fcall": "calls a function any user may have loaded",
    "fcall_ro": "calls a function any user may have loaded",
    "monitor": "streams every client's commands, passwords of AUTH included",
    "config": "reconfigures the server",
    "acl": "reads or rewrites every user",
    "debug": "crashes or inspects the server",
    "shutdown": "stops the server",
    "module": "loads code into the server",
    "save": "blocks the server on a snapshot",
    "bgsave": "snapshots the server",
    "bgrewriteaof": "rewrites the server's log",
    "replicaof": "turns the server into a replica (its data is replaced)",
    "slaveof": "turns the server into a replica (its data is replaced)",
    "failover": "hands the server's role to a replica",
    "cluster": "reconfigures the cluster",
    "migrate": "moves keys to another server",
    "client|kill": "disconnects other users' clients",
    "client|list": "lists every client, other users' included",
    "client|pause": "stops every client",
    "object|freq": "inspects keys' access patterns",
    "latency": "server diagnostics",
    "memory|doctor": "server diagnostics",
    "slowlog": "shows other users' commands and their arguments",
    "commandlog": "shows other users' commands and their arguments",
    "lastsave": "server diagnostics",
    "info": "server-wide state (clients, keyspace sizes, replication)",
}
_REDIS_COMMAND = re.compile(r"^[a-z][a-z0-9_-]*(\|[a-z][a-z0-9_-]*)?$")


class RedisAcl(TableModel):
    """One component user's allow-list: exactly the commands it may run (`-@all` then `+command` each)."""

    commands: tuple[str, ...]

    @field_validator("commands")
    @classmethod
    def _commands(cls, commands: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for command in commands:
            if not _REDIS_COMMAND.match(command):
                raise ValueError(
                    f"{command!r} is not a Redis command name: lowercase, a subcommand after '|'"
                    " (e.g. 'get', 'client|setinfo'); categories (@read) are not allowed in an allow-list"
                )
            refused = REDIS_NEVER_ALLOWED.get(command) or REDIS_NEVER_ALLOWED.get(command.split("|")[0])
            if refused:
                raise ValueError(f"{command!r} may not be allowed to a component user: it {refused}")
            if command in seen:
                raise ValueError(f"{command!r} is listed twice")
            seen.add(command)
        if not commands:
            raise ValueError("an empty allow-list: a user that may run nothing cannot even PING")
        return commands

    @property
    def rules(self) -> tuple[str, ...]:
        return ("-@all", *(f"+{c}" for c in self.commands))
