"""Configuration: TOML plus secrets from env or files, every problem reported at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from callengine import cli
from callengine.config import ConfigError, load_config

ENV = {"CALLENGINE_ARI_PASSWORD": "ari-pass", "CALLENGINE_ADMIN_TOKEN": "a" * 20,
       "CALLENGINE_DATA_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}


def write(tmp_path, text: str):
    path = tmp_path / "callengine.toml"
    path.write_text(text)
    return path


def test_defaults_and_relative_paths(tmp_path):
    config = load_config(write(tmp_path, ""), env=ENV)
    assert config.database == tmp_path / "var/callengine.db"
    assert config.ari.url == "http://127.0.0.1:8088/ari" and config.ari.password == "ari-pass"
    assert config.recording.public_key_file is None  # never records without a key
    assert config.recording.route == "fifo"
    assert config.recording.sample_rate == 8000  # telephone audio
    assert config.recording.fifo_slack_s == 32.0


@pytest.mark.parametrize("rate", [8000, 16000])
def test_sample_rate(tmp_path, rate):
    config = load_config(write(tmp_path, f"[recording]\nsample_rate = {rate}\n"), env=ENV)
    assert config.recording.sample_rate == rate


@pytest.mark.parametrize("value, problem", [
    ("44100", "recording.sample_rate must be 8000 (telephone audio) or 16000 (wideband codecs), "
              "got 44100"),
    ("16", "recording.sample_rate must be 8000 (telephone audio) or 16000 (wideband codecs), "
           "got 16"),
    ('"8000"', "recording.sample_rate must be int, got '8000'"),
    ("8000.0", "recording.sample_rate must be int, got 8000.0"),
])
def test_sample_rate_is_8000_or_16000(tmp_path, value, problem):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, f"[recording]\nsample_rate = {value}\n"), env=ENV)
    assert caught.value.problems == [problem]


def test_engine_id(tmp_path):
    assert load_config(write(tmp_path, ""), env=ENV).dialing.engine_id == "main"
    config = load_config(write(tmp_path, '[dialing]\nengine_id = "b2"\n'), env=ENV)
    assert config.dialing.engine_id == "b2"
    for bad in ('"B-2"', '""', '"a234567890abcdefg"', "7"):
        with pytest.raises(ConfigError, match="dialing.engine_id"):
            load_config(write(tmp_path, f"[dialing]\nengine_id = {bad}\n"), env=ENV)


def test_engine_lease(tmp_path):
    assert load_config(write(tmp_path, ""), env=ENV).dialing.engine_lease_s == 15.0
    config = load_config(write(tmp_path, "[dialing]\nengine_lease_s = 5\n"), env=ENV)
    assert config.dialing.engine_lease_s == 5.0
    for bad in ("2", "601", '"15"'):
        with pytest.raises(ConfigError, match="dialing.engine_lease_s"):
            load_config(write(tmp_path, f"[dialing]\nengine_lease_s = {bad}\n"), env=ENV)


def test_store_url(tmp_path, monkeypatch):
    assert load_config(write(tmp_path, ""), env=ENV).store_url is None
    url = "postgresql://callengine@db.example:5433/callengine"
    config = load_config(write(tmp_path, f'[store]\nurl = "{url}"\n'),
                         env={**ENV, "CALLENGINE_STORE_PASSWORD": "s3cret-pass"})
    assert (config.store_url, config.store_password) == (url, "s3cret-pass")
    assert "s3cret" not in repr(config)
    with pytest.raises(ConfigError, match="must not hold a password"):
        load_config(write(tmp_path, '[store]\nurl = "postgresql://u:pw@db/x"\n'), env=ENV)
    with pytest.raises(ConfigError, match="store.url must be postgresql://"):
        load_config(write(tmp_path, '[store]\nurl = "mysql://db/x"\n'), env=ENV)


def test_fifo_slack_bounds(tmp_path):
    config = load_config(write(tmp_path, "[recording]\nfifo_slack_s = 10\n"), env=ENV)
    assert config.recording.fifo_slack_s == 10.0
    with pytest.raises(ConfigError, match="fifo_slack_s must be between 1 and 600, got 0.5"):
        load_config(write(tmp_path, "[recording]\nfifo_slack_s = 0.5\n"), env=ENV)


def test_check_config_reports_fifo_capacity(tmp_path, capsys, monkeypatch):
    """Non-root with the kernel's default budget (16384 pages of 4 KiB): 512 KiB pipes at
    8 kHz, so 128 recordings fit; 16 kHz halves that; fewer than max_concurrent_calls warns."""
    from callengine.media import pipe_sizes

    limits = {"pipe-user-pages-soft": 16384, "pipe-user-pages-hard": 0,
              "pipe-max-size": 1048576}
    monkeypatch.setattr(pipe_sizes, "_proc_int", limits.get)
    monkeypatch.setattr(pipe_sizes, "pipe_limit_exempt", lambda: False)
    monkeypatch.setattr(pipe_sizes, "PAGE_SIZE", 4096)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CALLENGINE_AMI_SECRET", "s")
    (tmp_path / "rec.pub").write_text("x")
    recording = '[recording]\npublic_key_file = "rec.pub"\n'
    path = write(tmp_path, recording + "[dialing]\nmax_concurrent_calls = 100\n")
    assert cli.main(["--config", str(path), "check-config", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "recording: fifo route, 8000 Hz" in out
    assert ("FIFO pipe per recording: 512 KiB (33 s of audio); concurrent recordings that fit "
            "under fs.pipe-user-pages-soft: 128") in out
    assert "WARNING" not in out
    path = write(tmp_path, recording + "sample_rate = 16000\n"
                 "[dialing]\nmax_concurrent_calls = 100\n")
    assert cli.main(["--config", str(path), "check-config", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "1024 KiB (33 s of audio); concurrent recordings that fit under " \
           "fs.pipe-user-pages-soft: 64" in out
    assert "WARNING: 64 FIFO recordings fit, dialing.max_concurrent_calls is 100" in out
    monkeypatch.setattr(pipe_sizes, "pipe_limit_exempt", lambda: True)  # root, CAP_SYS_RESOURCE
    assert cli.main(["--config", str(path), "check-config", "--offline"]) == 0
    assert "fs.pipe-user-pages-soft: unlimited" in capsys.readouterr().out


def test_secrets_from_files(tmp_path):
    (tmp_path / "ari").write_text("from-file\n")
    (tmp_path / "token").write_text("t" * 24)
    (tmp_path / "data.key").write_text(ENV["CALLENGINE_DATA_KEY"] + "\n")
    config = load_config(write(tmp_path, '[ari]\npassword_file = "ari"\n'
                                         '[http]\nadmin_token_file = "token"\n'
                                         '[store]\ndata_key_file = "data.key"\n'), env={})
    assert config.data_key == bytes(range(32))
    assert config.ari.password == "from-file" and config.http.admin_token == "t" * 24


def test_every_problem_reported_at_once(tmp_path):
    (tmp_path / "empty").write_text("  \n")
    path = write(tmp_path, """
[ari]
url = "ftp://x"
password_file = "empty"
surprise = 1
[http]
port = 70000
[dialing]
max_concurrent_calls = 0
[recording]
route = "carrier-pigeon"
public_key_file = "missing.pub"
[nonsense]
""")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    # Unknown names come first, alone: with a typo the other findings would mislead.
    assert caught.value.problems == ["unknown key ari.surprise", "unknown section [nonsense]"]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, """
[ari]
url = "ftp://x"
password_file = "empty"
[http]
port = 70000
[dialing]
max_concurrent_calls = 0
[recording]
route = "carrier-pigeon"
public_key_file = "missing.pub"
"""), env={})
    problems = caught.value.problems
    assert any("ari.url" in p for p in problems)
    assert any("is empty" in p for p in problems)
    assert any("http.port" in p for p in problems)
    assert any("max_concurrent_calls" in p for p in problems)
    assert any("recording.route" in p for p in problems)
    assert any("missing.pub" in p for p in problems)
    assert any("admin token" in p for p in problems)
    assert "ari-pass" not in str(caught.value)


def test_fifo_route_needs_ami(tmp_path):
    (tmp_path / "rec.pub").write_text("x")
    path = write(tmp_path, '[recording]\npublic_key_file = "rec.pub"\n')
    with pytest.raises(ConfigError, match="needs AMI"):
        load_config(path, env=ENV)
    assert load_config(path, env={**ENV, "CALLENGINE_AMI_SECRET": "s"}).ami.secret == "s"


def test_short_admin_token_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least 16"):
        load_config(write(tmp_path, ""), env={**ENV, "CALLENGINE_ADMIN_TOKEN": "short"})


def test_cli_reports_config_errors_without_a_trace(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CALLENGINE_ARI_PASSWORD", raising=False)
    monkeypatch.delenv("CALLENGINE_ADMIN_TOKEN", raising=False)
    path = write(tmp_path, "[ari\n")
    assert cli.main(["--config", str(path), "check-config", "--offline"]) == 2
    err = capsys.readouterr().err
    assert "not valid TOML" in err and "Traceback" not in err
    assert cli.main(["--config", str(tmp_path / "nope.toml"), "check-config", "--offline"]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_config_is_a_leaf():
    """Importing the configuration has no side effects: no media tap (whose module imports
    fcntl and sizes pipes), no recorder, no crypto; only callengine.audio from callengine."""
    root = Path(__file__).resolve().parents[1]
    code = ("import sys; before = set(sys.modules); import callengine.config; "
            "print(' '.join(sorted(m for m in set(sys.modules) - before "
            "if m == 'fcntl' or m.startswith('callengine'))))")
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == ["callengine", "callengine.audio", "callengine.config"]
    assert "callengine.media.fifo" not in out and "fcntl" not in out


def test_challenge_key_from_file_or_env_or_none(tmp_path):
    assert load_config(write(tmp_path, ""), env=ENV).http.challenge_key == ""  # from the data key
    (tmp_path / "challenge").write_text("c" * 40 + "\n")
    path = write(tmp_path, '[http]\nchallenge_key_file = "challenge"\n')
    assert load_config(path, env=ENV).http.challenge_key == "c" * 40
    env = {**ENV, "CALLENGINE_CHALLENGE_KEY": "e" * 32}
    assert load_config(path, env=env).http.challenge_key == "e" * 32
    with pytest.raises(ConfigError, match="challenge HMAC key must be at least 32"):
        load_config(write(tmp_path, ""), env={**ENV, "CALLENGINE_CHALLENGE_KEY": "short"})


def test_the_install_sample_configuration_is_valid():
    """packaging/callengine.toml (docs/install.md) parses, with the secrets from the
    environment (its *_file paths are the installed host's)."""
    sample = Path(__file__).resolve().parents[1] / "packaging" / "callengine.toml"
    env = {**ENV, "CALLENGINE_AMI_SECRET": "ami-secret-0123456789",
           "CALLENGINE_METRICS_TOKEN": "m" * 20}
    config = load_config(sample, env=env)
    assert config.log_format == "json" and config.http.metrics_token == "m" * 20
    assert config.recording.fifo_dir == Path("/var/lib/callengine/fifo")
    assert config.database == Path("/var/lib/callengine/callengine.db")


def test_asterisk_nodes(tmp_path):
    path = tmp_path / "callengine.toml"
    path.write_text("")
    config = load_config(path, env=ENV)
    assert [(n.name, n.url) for n in config.ari_nodes] == [("main", "http://127.0.0.1:8088/ari")]
    assert config.ari.down_after_s == 20.0
    (tmp_path / "b.pass").write_text("b-secret\n")
    path.write_text('[ari]\nnode = "a"\ndown_after_s = 5\n'
                    '[nodes.b]\nurl = "http://10.0.0.2:8088/ari"\npassword_file = "b.pass"\n')
    config = load_config(path, env=ENV)
    assert [(n.name, n.url, n.user, n.password) for n in config.ari_nodes] == [
        ("a", "http://127.0.0.1:8088/ari", "callengine", "ari-pass"),
        ("b", "http://10.0.0.2:8088/ari", "callengine", "b-secret")]
    assert "b-secret" not in repr(config)
    path.write_text('[ari]\nnode = "b"\ndown_after_s = 0\n[nodes.b]\nurl = "ftp://x"\nport = 1\n'
                    '[nodes.c]\nurl = "http://x/ari"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(path, env=ENV)
    assert sorted(refused.value.problems) == sorted([
        "ari.down_after_s must be between 1 and 600 seconds, got 0",
        "unknown key nodes.b.port",
        "nodes.b.url must be an http(s):// ARI URL",
        "nodes.b.password_file: the node's ARI password file is required",
        "nodes.c.password_file: the node's ARI password file is required",
        "the Asterisk nodes' names ([ari] node and [nodes.<name>]) must differ",
    ])
