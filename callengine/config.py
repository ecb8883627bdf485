"""Engine configuration: a TOML file plus secrets from the environment or from files.

Validated once at start into frozen dataclasses; every problem is reported with the key that
caused it, all at once, so an administrator fixes the file in one go. Secrets never live in the
TOML file itself: each has an environment variable and a `*_file` key (see docs/config.md).
"""

from __future__ import annotations

import base64
import os
import re
import urllib.parse
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callengine.audio import DEFAULT_FIFO_SLACK_S, DEFAULT_SAMPLE_RATE, SAMPLE_RATES


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AriConfig:
    url: str
    user: str
    password: str = field(repr=False)
    app: str
    # Several Asterisk nodes (docs/scale-out.md): this one's name, and how long a node's events
    # may stay lost before it is taken for down and its calls are closed.
    node: str = "main"
    down_after_s: float = 20.0


@dataclass(frozen=True)
class NodeConfig:
    """[nodes.<name>]: another Asterisk node the engine drives, besides [ari]'s."""

    name: str
    url: str
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class HttpConfig:
    host: str
    port: int
    admin_token: str
    header_timeout_s: float = 10.0  # a request's headers must be in within this (slowloris)
    body_timeout_s: float = 10.0  # and its body within this once the handler reads it
    # The widget challenges' HMAC key (a secret: not in repr); "": derived from the data key.
    challenge_key: str = field(default="", repr=False)
    # May read /metrics besides the admin token (a secret: not in repr); "": the admin token only.
    metrics_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class DialingConfig:
    max_concurrent_calls: int
    poll_interval_s: float
    # This engine's name among those driving one Asterisk: its channels and bridges are
    # ce-<engine_id>-…, and it hangs up no other (docs/config.md).
    engine_id: str = "main"
    # Its lease in the store (`engine:<engine_id>`), renewed every third of it: an engine
    # silent for longer is taken for dead, and another closes its calls (docs/scale-out.md).
    engine_lease_s: float = 15.0


@dataclass(frozen=True)
class OutboxRetention:
    """How long the webhooks' outbox keeps what is settled (docs/webhooks.md, "Pruning"):
    delivered deliveries since their delivery, dead ones since their event."""
    delivered_days: float = 7.0
    dead_days: float = 30.0


@dataclass(frozen=True)
class AmiConfig:
    host: str
    port: int
    user: str
    secret: str  # empty: AMI not configured (only the FIFO recording route needs it)


@dataclass(frozen=True)
class RecordingConfig:
    route: str  # "fifo" (engine and Asterisk share a host) or "rtp" (externalMedia)
    public_key_file: Path | None  # None: this engine never records
    private_key_files: tuple[Path, ...]  # empty: no playback here (export on another machine)
    fifo_dir: Path  # where the engine makes FIFOs …
    fifo_dir_asterisk: str  # … and the same directory as Asterisk sees it
    fifo_group: int | None  # group id Asterisk runs as (may write FIFOs, not create files)
    rtp_bind: str
    rtp_advertise: str
    rtp_ports: tuple[int, int]
    orphan_check_s: float
    sample_rate: int = DEFAULT_SAMPLE_RATE  # 8000 (telephone audio) or 16000 (wideband codecs)
    fifo_slack_s: float = DEFAULT_FIFO_SLACK_S  # seconds of audio each FIFO's pipe holds


@dataclass(frozen=True)
class PromptsConfig:
    dir: Path  # where `callengine prompt import` writes converted prompts …
    dir_asterisk: str  # … and the same directory as Asterisk sees it


@dataclass(frozen=True)
class Config:
    database: Path
    keystore: Path  # sealed per-recording keys; kept out of backups (docs/backup.md)
    data_key: bytes  # encrypts personal fields in the store; keyed hash of numbers
    recordings_dir: Path
    ari: AriConfig
    http: HttpConfig
    dialing: DialingConfig
    log_level: str
    ami: AmiConfig
    recording: RecordingConfig
    prompts: PromptsConfig
    retention_interval_s: float = 3600.0  # how often the purge job runs (and once at start)
    outbox_retention: OutboxRetention = field(default_factory=lambda: OutboxRetention())
    audit_dir: Path | None = None  # the audit key and anchors (docs/audit.md); None: keystore's
    log_format: str = "text"  # or "json": one JSON object a line (callengine/logs.py)
    cli: CliConfig = field(default_factory=lambda: CliConfig())
    panel: PanelConfig = field(default_factory=lambda: PanelConfig())
    # [store] url: a PostgreSQL server instead of the SQLite file `database` (docs/scale-out.md);
    # its password from store.password_file or CALLENGINE_STORE_PASSWORD (a secret: not in repr)
    store_url: str | None = None
    store_password: str = field(default="", repr=False)
    nodes: tuple[NodeConfig, ...] = ()  # [nodes.<name>]: more Asterisk nodes, in order

    @property
    def ari_nodes(self) -> tuple[NodeConfig, ...]:
        """Every Asterisk node, [ari]'s first."""
        first = NodeConfig(self.ari.node, self.ari.url, self.ari.user, self.ari.password)
        return (first, *self.nodes)

    @property
    def audit_directory(self) -> Path:
        return self.audit_dir or self.keystore.parent


@dataclass(frozen=True)
class PanelConfig:
    """[panel]: its login sessions and lockout (services/users.py; docs/config.md)."""

    idle_timeout_s: float = 1800.0  # a session ends after this long without a request …
    absolute_timeout_s: float = 43200.0  # … and this long after its login, whatever
    max_failures: int = 5  # failed logins of one account name within lockout_s lock it …
    client_max_failures: int = 20  # … of one client address, lock that client
    lockout_s: float = 900.0  # for this long
    # Secure cookies (HTTPS only): off only for plain-http development on loopback.
    secure_cookies: bool = True


CLI_ROLES = ("admin", "supervisor", "agent", "viewer")  # callengine.access.Role's values


@dataclass(frozen=True)
class CliConfig:
    """[cli]: the most each OS user may act as (docs/config.md, "[cli]"). No table: anyone
    who can run the CLI with this configuration may act in any role."""

    roles: dict[str, str] = field(default_factory=dict)  # OS user -> maximum role
    default_role: str | None = None  # for an OS user not in `roles`; None: refused


_DEFAULTS: dict[str, dict[str, Any]] = {
    "store": {"database": "var/callengine.db", "recordings_dir": "recordings",
              "keystore": "var/keystore/keystore.db"},
    "ari": {"url": "http://127.0.0.1:8088/ari", "user": "callengine", "app": "callengine",
            "node": "main", "down_after_s": 20.0},
    "http": {"host": "127.0.0.1", "port": 8080, "header_timeout_s": 10.0, "body_timeout_s": 10.0},
    "dialing": {"max_concurrent_calls": 20, "poll_interval_s": 1.0, "engine_id": "main",
                "engine_lease_s": 15.0},
    "log": {"level": "INFO", "format": "text"},
    "ami": {"host": "127.0.0.1", "port": 5038, "user": "callengine"},
    "recording": {
        "route": "fifo",
        "fifo_dir": "var/asterisk/state/fifo",
        "fifo_dir_asterisk": "/var/lib/callengine-asterisk/fifo",
        "rtp_bind": "127.0.0.1",
        "rtp_ports": [40000, 40999],
        "orphan_check_s": 5.0,
        "sample_rate": DEFAULT_SAMPLE_RATE,
        "fifo_slack_s": DEFAULT_FIFO_SLACK_S,
    },
    "prompts": {
        "dir": "var/asterisk/state/prompts",
        "dir_asterisk": "/var/lib/callengine-asterisk/prompts",
    },
    "retention": {"interval_s": 3600.0, "webhooks_delivered_days": 7.0,
                  "webhooks_dead_days": 30.0},
}
_KNOWN = {
    "store": {"database", "recordings_dir", "data_key_file", "keystore", "audit_dir", "url",
              "password_file"},
    "ari": {"url", "user", "app", "password_file", "node", "down_after_s"},
    "nodes": set(),  # a table of tables: checked by _nodes
    "http": {"host", "port", "admin_token_file", "header_timeout_s", "body_timeout_s",
             "challenge_key_file", "metrics_token_file"},
    "dialing": {"max_concurrent_calls", "poll_interval_s", "engine_id", "engine_lease_s"},
    "log": {"level", "format"},
    "ami": {"host", "port", "user", "secret_file"},
    "recording": {
        "route", "public_key_file", "private_key_files", "fifo_dir", "fifo_dir_asterisk",
        "fifo_group", "rtp_bind", "rtp_advertise", "rtp_ports", "orphan_check_s",
        "sample_rate", "fifo_slack_s",
    },
    "prompts": {"dir", "dir_asterisk"},
    "retention": {"interval_s", "webhooks_delivered_days", "webhooks_dead_days"},
    "cli": {"roles", "default_role"},
    "panel": {"idle_timeout_s", "absolute_timeout_s", "max_failures", "client_max_failures",
              "lockout_s", "secure_cookies"},
}


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ) if env is None else env
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"config file not found: {path}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_config(raw, base_dir=path.parent, env=env)


def parse_config(raw: dict[str, Any], *, base_dir: Path, env: dict[str, str]) -> Config:
    problems: list[str] = []
    for section, value in raw.items():
        if section not in _KNOWN:
            problems.append(f"unknown section [{section}]")
        elif not isinstance(value, dict):
            problems.append(f"[{section}] must be a table")
        elif section != "nodes":
            problems += [f"unknown key {section}.{k}" for k in value if k not in _KNOWN[section]]
    if problems:
        raise ConfigError(problems)

    def get(section: str, key: str, kind: type, default: Any = None) -> Any:
        value = raw.get(section, {}).get(key, _DEFAULTS.get(section, {}).get(key, default))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            problems.append(f"{section}.{key} must be {kind.__name__}, got {value!r}")
            return default
        return value

    def secret(name: str, env_var: str, section: str, file_key: str,
               required: bool = True) -> str:
        if env.get(env_var):
            return env[env_var].strip()
        file_value = get(section, file_key, str)
        if not file_value:
            if required:
                problems.append(f"{name}: set {env_var} or {section}.{file_key}")
            return ""
        file_path = base_dir / file_value
        try:
            value = file_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{section}.{file_key}: cannot read {file_path}: {exc.strerror}")
            return ""
        if not value:
            problems.append(f"{section}.{file_key}: {file_path} is empty")
        return value

    url = get("ari", "url", str)
    if url and not url.startswith(("http://", "https://")):
        problems.append(f"ari.url must start with http:// or https://, got {url!r}")
    node = get("ari", "node", str) or "main"
    down_after = get("ari", "down_after_s", float)
    down_after = 20.0 if down_after is None else down_after
    if not 1 <= down_after <= 600:
        problems.append(f"ari.down_after_s must be between 1 and 600 seconds, got {down_after:g}")
    nodes = _nodes(raw.get("nodes", {}), get("ari", "user", str) or "", base_dir, problems)
    names = [node, *(n.name for n in nodes)]
    for name in names:
        if not re.fullmatch(r"[a-z0-9-]{1,32}", name):
            problems.append(f"an Asterisk node's name must be 1–32 of a-z, 0-9 and -, got {name!r}")
    if len(set(names)) < len(names):
        problems.append("the Asterisk nodes' names ([ari] node and [nodes.<name>]) must differ")
    port = get("http", "port", int)
    if port is not None and not 0 <= port <= 65535:
        problems.append(f"http.port must be 0–65535, got {port}")
    read_timeouts = {key: get("http", key, float) for key in ("header_timeout_s", "body_timeout_s")}
    for key, value in read_timeouts.items():
        if value is not None and not 0.1 <= value <= 300:
            problems.append(f"http.{key} must be between 0.1 and 300 seconds, got {value:g}")
    max_calls = get("dialing", "max_concurrent_calls", int)
    if max_calls is not None and max_calls < 1:
        problems.append("dialing.max_concurrent_calls must be at least 1")
    poll = get("dialing", "poll_interval_s", float)
    if poll is not None and not 0.05 <= poll <= 60:
        problems.append("dialing.poll_interval_s must be between 0.05 and 60")
    engine_id = get("dialing", "engine_id", str)
    if engine_id is None:  # not a string: said above
        engine_id = "main"
    elif not re.fullmatch(r"[a-z0-9]{1,16}", engine_id):
        problems.append("dialing.engine_id must be 1–16 lower-case letters or digits, got "
                        f"{engine_id!r}")
    lease = get("dialing", "engine_lease_s", float)
    if lease is not None and not 3 <= lease <= 600:
        problems.append(f"dialing.engine_lease_s must be between 3 and 600 seconds, got {lease:g}")
    level = str(get("log", "level", str) or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"log.level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    log_format = get("log", "format", str) or "text"
    if log_format not in ("text", "json"):
        problems.append(f"log.format must be \"text\" or \"json\", got {log_format!r}")

    route = get("recording", "route", str)
    if route not in ("fifo", "rtp"):
        problems.append(f"recording.route must be \"fifo\" or \"rtp\", got {route!r}")
    public_key = get("recording", "public_key_file", str)
    private_keys = get("recording", "private_key_files", list, [])
    if private_keys is not None and not all(isinstance(k, str) for k in private_keys):
        problems.append("recording.private_key_files must be a list of paths")
        private_keys = []
    for key_path in [public_key, *(private_keys or [])]:
        if key_path and not (base_dir / key_path).is_file():
            problems.append(f"recording key file not found: {base_dir / key_path}")
    rtp_ports = get("recording", "rtp_ports", list)
    if not (
        isinstance(rtp_ports, list) and len(rtp_ports) == 2
        and all(isinstance(p, int) and 1024 <= p <= 65535 for p in rtp_ports)
        and rtp_ports[0] <= rtp_ports[1]
    ):
        problems.append("recording.rtp_ports must be [first, last] within 1024–65535")
        rtp_ports = [40000, 40999]
    fifo_group = get("recording", "fifo_group", int)
    rtp_bind = get("recording", "rtp_bind", str) or "127.0.0.1"
    ami_port = get("ami", "port", int)
    orphan_check = get("recording", "orphan_check_s", float) or 5.0
    sample_rate = get("recording", "sample_rate", int)
    if sample_rate is not None and sample_rate not in SAMPLE_RATES:
        problems.append(
            f"recording.sample_rate must be 8000 (telephone audio) or 16000 (wideband codecs), "
            f"got {sample_rate}")
    fifo_slack = get("recording", "fifo_slack_s", float)
    if fifo_slack is not None and not 1 <= fifo_slack <= 600:
        problems.append(f"recording.fifo_slack_s must be between 1 and 600, got {fifo_slack:g}")
    retention_interval = get("retention", "interval_s", float) or 3600.0
    if not 60 <= retention_interval <= 7 * 86400:
        problems.append("retention.interval_s must be between 60 and 604800")
    outbox = OutboxRetention(get("retention", "webhooks_delivered_days", float) or 7.0,
                             get("retention", "webhooks_dead_days", float) or 30.0)
    if not 1 <= outbox.delivered_days <= 3650 or not 1 <= outbox.dead_days <= 3650:
        problems.append("retention.webhooks_delivered_days and webhooks_dead_days must be"
                        " between 1 and 3650")

    cli = _cli(raw.get("cli", {}), problems)
    panel = _panel(get, raw.get("panel", {}), problems)

    audit_dir = get("store", "audit_dir", str)
    store_url = get("store", "url", str)
    if store_url is not None:
        problems += store_url_problems(store_url)
    data_key = _data_key(
        secret("store data key", "CALLENGINE_DATA_KEY", "store", "data_key_file"), problems
    )

    config = Config(
        database=base_dir / get("store", "database", str, ""),
        keystore=base_dir / get("store", "keystore", str, ""),
        data_key=data_key,
        recordings_dir=base_dir / get("store", "recordings_dir", str, ""),
        ari=AriConfig(
            url=url or "",
            user=get("ari", "user", str) or "",
            password=secret("ARI password", "CALLENGINE_ARI_PASSWORD", "ari", "password_file"),
            app=get("ari", "app", str) or "",
            node=node,
            down_after_s=down_after,
        ),
        http=HttpConfig(
            host=get("http", "host", str) or "",
            port=port if port is not None else 0,
            admin_token=secret(
                "admin token", "CALLENGINE_ADMIN_TOKEN", "http", "admin_token_file"
            ),
            header_timeout_s=read_timeouts["header_timeout_s"] or 10.0,
            body_timeout_s=read_timeouts["body_timeout_s"] or 10.0,
            challenge_key=secret("challenge HMAC key", "CALLENGINE_CHALLENGE_KEY", "http",
                                 "challenge_key_file", required=False),
            metrics_token=secret("metrics token", "CALLENGINE_METRICS_TOKEN", "http",
                                 "metrics_token_file", required=False),
        ),
        dialing=DialingConfig(max_concurrent_calls=max_calls or 1, poll_interval_s=poll or 1.0,
                              engine_id=engine_id, engine_lease_s=lease or 15.0),
        log_level=level,
        ami=AmiConfig(
            host=get("ami", "host", str) or "",
            port=ami_port or 5038,
            user=get("ami", "user", str) or "",
            secret=secret("AMI secret", "CALLENGINE_AMI_SECRET", "ami", "secret_file",
                          required=False),
        ),
        recording=RecordingConfig(
            route=route or "fifo",
            public_key_file=base_dir / public_key if public_key else None,
            private_key_files=tuple(base_dir / k for k in private_keys or []),
            fifo_dir=base_dir / get("recording", "fifo_dir", str, ""),
            fifo_dir_asterisk=get("recording", "fifo_dir_asterisk", str) or "",
            fifo_group=fifo_group,
            rtp_bind=rtp_bind,
            rtp_advertise=get("recording", "rtp_advertise", str) or rtp_bind,
            rtp_ports=(rtp_ports[0], rtp_ports[1]),
            orphan_check_s=orphan_check,
            sample_rate=sample_rate if sample_rate in SAMPLE_RATES else DEFAULT_SAMPLE_RATE,
            fifo_slack_s=fifo_slack or DEFAULT_FIFO_SLACK_S,
        ),
        prompts=PromptsConfig(
            dir=base_dir / get("prompts", "dir", str, ""),
            dir_asterisk=get("prompts", "dir_asterisk", str) or "",
        ),
        retention_interval_s=retention_interval,
        outbox_retention=outbox,
        cli=cli,
        panel=panel,
        audit_dir=base_dir / audit_dir if audit_dir else None,
        log_format=log_format,
        store_url=store_url or None,
        store_password=secret("store password", "CALLENGINE_STORE_PASSWORD", "store",
                              "password_file", required=False),
        nodes=nodes,
    )
    if nodes and config.recording.public_key_file and config.recording.route == "fifo":
        problems.append("several Asterisk nodes record through recording.route = \"rtp\": "
                        "the FIFO route needs Asterisk on the engine's own host")
    if config.recording.public_key_file and config.recording.route == "fifo" and not (
        config.ami.secret
    ):
        problems.append("recording.route = \"fifo\" needs AMI: set CALLENGINE_AMI_SECRET or "
                        "ami.secret_file")
    if config.http.challenge_key and len(config.http.challenge_key) < 32:
        problems.append("the challenge HMAC key must be at least 32 characters")
    if config.http.admin_token and len(config.http.admin_token) < 16:
        problems.append("the admin token must be at least 16 characters")
    if config.http.metrics_token and len(config.http.metrics_token) < 16:
        problems.append("the metrics token must be at least 16 characters")
    if problems:
        raise ConfigError(problems)
    return config


def _nodes(raw: Any, default_user: str, base_dir: Path, problems: list[str]
           ) -> tuple[NodeConfig, ...]:
    """[nodes.<name>] tables: url (required), user (default ari.user), password_file
    (required: a node's ARI password, read from that file)."""
    if not isinstance(raw, dict):
        problems.append("[nodes] must hold one table per node: [nodes.<name>]")
        return ()
    nodes = []
    for name, table in raw.items():
        if not isinstance(table, dict):
            problems.append(f"[nodes.{name}] must be a table")
            continue
        problems += [f"unknown key nodes.{name}.{k}" for k in table
                     if k not in ("url", "user", "password_file")]
        url, user, password_file = (table.get(k) for k in ("url", "user", "password_file"))
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(f"nodes.{name}.url must be an http(s):// ARI URL")
        if user is not None and not isinstance(user, str):
            problems.append(f"nodes.{name}.user must be str")
        password = ""
        if not isinstance(password_file, str) or not password_file:
            problems.append(f"nodes.{name}.password_file: the node's ARI password file is required")
        else:
            try:
                password = (base_dir / password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(f"nodes.{name}.password_file: cannot read "
                                f"{base_dir / password_file}: {exc.strerror}")
            else:
                if not password:
                    problems.append(f"nodes.{name}.password_file: {base_dir / password_file} "
                                    "is empty")
        nodes.append(NodeConfig(str(name), url if isinstance(url, str) else "",
                                user if isinstance(user, str) else default_user, password))
    return tuple(nodes)


def store_url_problems(url: str) -> list[str]:
    """A PostgreSQL URL, without a password in it (secrets come from files or the
    environment, never a URL that ends up in a process list or a log)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        return [f"store.url must be postgresql://[user@]host[:port]/database, got {parts.scheme}"
                "://…"]
    if parts.password is not None:
        return ["store.url must not hold a password: put it in store.password_file or "
                "CALLENGINE_STORE_PASSWORD"]
    return []


def _cli(section: dict[str, Any], problems: list[str]) -> CliConfig:
    roles = section.get("roles", {})
    default = section.get("default_role")
    if not isinstance(roles, dict) or not all(
            isinstance(user, str) and role in CLI_ROLES for user, role in roles.items()):
        problems.append("cli.roles must map OS user names to roles: "
                        f"{{ alice = \"supervisor\" }} (roles: {', '.join(CLI_ROLES)})")
        roles = {}
    if default is not None and default not in CLI_ROLES:
        problems.append(f"cli.default_role must be one of {', '.join(CLI_ROLES)}")
        default = None
    if default is not None and not roles:
        problems.append("cli.default_role needs a cli.roles table (without one, every user "
                        "may act in any role)")
    return CliConfig(dict(roles), default)


def _panel(get: Any, section: dict[str, Any], problems: list[str]) -> PanelConfig:
    defaults = PanelConfig()

    def value(key: str, kind: type) -> Any:
        found = get("panel", key, kind)
        return getattr(defaults, key) if found is None else found

    idle = value("idle_timeout_s", float)
    absolute = value("absolute_timeout_s", float)
    failures = value("max_failures", int)
    client_failures = value("client_max_failures", int)
    lockout = value("lockout_s", float)
    secure = section.get("secure_cookies", True)
    if not isinstance(secure, bool):
        problems.append(f"panel.secure_cookies must be true or false, got {secure!r}")
        secure = True
    if not 60 <= idle <= 86400:
        problems.append(f"panel.idle_timeout_s must be between 60 and 86400, got {idle:g}")
    if not idle <= absolute <= 7 * 86400:
        problems.append("panel.absolute_timeout_s must be between panel.idle_timeout_s and "
                        f"604800, got {absolute:g}")
    if not 1 <= failures <= 100 or not 1 <= client_failures <= 10000:
        problems.append("panel.max_failures must be 1–100 and panel.client_max_failures 1–10000")
    if not 1 <= lockout <= 86400:
        problems.append(f"panel.lockout_s must be between 1 and 86400, got {lockout:g}")
    return PanelConfig(idle, absolute, failures, client_failures, lockout, secure)


def _data_key(text: str, problems: list[str]) -> bytes:
    """The data key is 32 random bytes written as base64 (`callengine keys data-key`)."""
    if not text:
        return b""
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        problems.append("the store data key must be 32 bytes in base64 (callengine keys data-key)")
    return key
