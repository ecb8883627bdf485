"""A callback end to end: the engine, a widget's lead, an agent's phone, the visitor's phone.

Run through scripts/demo (which sets up and starts Asterisk). Everything lives in var/demo/;
each run starts from an empty store. It also serves a demo page on another loopback port (another
origin, in the widget's allowed origins) that embeds the widget as a site would; with --serve
the engine and the page stay up after the scripted call until Ctrl-C."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from callengine import crypto  # noqa: E402
from tests.support.asterisk import Asterisk  # noqa: E402  (paths and ids of the dev Asterisk)
from tests.support.phones import Phone  # noqa: E402  (the sipp test phones)

DEMO = REPO / "var" / "demo"
PORT = 8085
PAGE_PORT = 8086  # the demo page: another origin than the engine's
PAGE_ORIGIN = f"http://127.0.0.1:{PAGE_PORT}"
VISITOR = "+48 601 234 567"
CLAUSES = {
    "en": "Demo Shop Ltd. is the controller of your data. We use your number only to call you"
          " back, and keep it for 30 days.",
    "pl": "Administratorem Twoich danych jest Demo Sklep sp. z o.o. Numer służy wyłącznie do"
          " oddzwonienia i przechowujemy go 30 dni.",
}
PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Demo shop</title></head>
<body><h1>Demo shop</h1><p>This page is served from {page}; the widget from the engine at {engine}.
<a href="/?lang=en">English</a> · <a href="/?lang=pl">Polski</a></p>
<script async src="{engine}/widget.js" data-widget="{key}"></script>
</body></html>"""


def serve_page(public_key: str) -> ThreadingHTTPServer:
    """The demo page, embedding the widget with one script tag, on PAGE_ORIGIN."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            lang = "pl" if "lang=pl" in self.path else "en"
            body = PAGE.format(lang=lang, page=PAGE_ORIGIN, engine=f"http://127.0.0.1:{PORT}",
                               key=public_key).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # no access log: visitors' addresses stay out
            pass

    server = ThreadingHTTPServer(("127.0.0.1", PAGE_PORT), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def callengine(*args: str) -> str:
    result = subprocess.run(
        [str(REPO / ".venv/bin/callengine"), "--config", str(DEMO / "callengine.toml"), *args],
        check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


def write_config(asterisk: Asterisk) -> None:
    if DEMO.exists():
        shutil.rmtree(DEMO)
    (DEMO / "secrets").mkdir(parents=True, mode=0o700)
    token = DEMO / "secrets" / "admin_token"
    token.write_text(secrets.token_urlsafe(24))
    token.chmod(0o600)
    data_key = DEMO / "secrets" / "data.key"  # encrypts numbers, names, e-mails in the store
    data_key.write_text(base64.b64encode(crypto.generate_data_key()).decode())
    data_key.chmod(0o600)
    # The recipient key pair: the engine needs only the public key to record; the demo gives
    # it the private key too, so it can verify what it recorded.
    private, public = crypto.generate_recipient_keypair()
    crypto.save_public_key(DEMO / "secrets" / "recording.pub", public)
    crypto.save_private_key(DEMO / "secrets" / "recording.key", private)
    fifo_group = asterisk.group_id
    (DEMO / "callengine.toml").write_text(f"""
[store]
database = "callengine.db"
recordings_dir = "recordings"
keystore = "keystore/keystore.db"
data_key_file = "secrets/data.key"

[ari]
url = "http://127.0.0.1:8088/ari"
user = "callengine"
password_file = "../secrets/ari_password"

[http]
host = "127.0.0.1"
port = {PORT}
admin_token_file = "secrets/admin_token"

[panel]
secure_cookies = false  # plain http on loopback: a browser sends Secure cookies over https only

[dialing]
poll_interval_s = 0.5

[ami]
user = "callengine"
secret_file = "../secrets/ami_secret"

[recording]
route = "fifo"
public_key_file = "secrets/recording.pub"
private_key_files = ["secrets/recording.key"]
fifo_dir = "../asterisk/state/fifo"
fifo_dir_asterisk = "/var/lib/callengine-asterisk/fifo"
{f"fifo_group = {fifo_group}" if fifo_group is not None else ""}

[prompts]
dir = "../asterisk/state/prompts"
dir_asterisk = "/var/lib/callengine-asterisk/prompts"
""")


async def log_in_to_panel(password: str) -> str:
    """As a browser would: the login form (its CSRF field), the session cookie, the leads page."""
    import re

    base = f"http://127.0.0.1:{PORT}/panel"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(f"{base}/login") as answer:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await answer.text()).group(1)
        async with session.post(f"{base}/login", data={
                "username": "demo", "password": password, "csrf": csrf}) as answer:
            page = await answer.text()
        rows = page.count("<tr") - 1
        return f"{answer.url.path}: HTTP {answer.status}, {rows} lead row(s), numbers masked"


async def follow(public_key: str) -> str:
    body = {"phone": VISITOR, "name": "Demo Visitor",
            "consent": {"marketing": False, "recording": True}, "clause_version": "demo-1"}
    base = f"http://127.0.0.1:{PORT}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # the engine is starting
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        async with session.post(f"{base}/api/v1/widgets/{public_key}/leads", json=body) as r:
            lead = await r.json()
            print(f"lead {lead['id']} submitted for {VISITOR[:4]}*** *** {VISITOR[-3:]}"
                  f" → HTTP {r.status}, status {lead['status']}")
        seen = None
        started = time.monotonic()
        while time.monotonic() - started < 60:
            async with session.get(f"{base}{lead['status_url']}") as r:
                state = await r.json()
            shown = (state["status"], state["progress"], state["outcome"])
            if shown != seen:
                seen = shown
                print(f"  {time.monotonic() - started:5.1f} s  {state['status']:<8}"
                      f" {state['progress'] or '':<18} {state['outcome'] or ''}")
            if state["status"] == "done":
                return lead["id"]
            await asyncio.sleep(0.1)
        raise SystemExit("the callback did not finish within 60 s")


def main() -> int:
    write_config(Asterisk())
    # The recording notice: any audio file the administrator has, converted for Asterisk.
    notice = DEMO / "notice.ogg"
    subprocess.run(["sox", "-n", "-r", "44100", str(notice), "synth", "0.6", "sine", "660"],
                   check=True)
    print(callengine("prompt", "import", str(notice), "recording-notice"))
    callengine("agent", "add", "alice", "PJSIP/agent1")
    callengine("group", "add", "sales", "--agents", "alice", "--ring-timeout", "15")
    public_key = callengine(
        "widget", "add", "shop", "--group", "sales", "--regions", "PL",
        "--caller-id", '"Shop" <+48221234567>', "--quiet", "--settings", json.dumps({
            "recording": "on",
            "recording_notice": "sound:/var/lib/callengine-asterisk/prompts/recording-notice",
            "allowed_origins": [PAGE_ORIGIN],
            # The scripted lead below is a plain HTTP client that solves no proof of work.
            "challenge": "off",
        }))
    for lang, text in CLAUSES.items():
        (DEMO / f"clause-{lang}.txt").write_text(text, encoding="utf-8")
        callengine("clause", "add", "shop", "--language", lang, "--version", "demo-1",
                   "--text", str(DEMO / f"clause-{lang}.txt"),
                   "--privacy-url", "https://shop.example/privacy")
    print(f"widget shop (public key {public_key}), group sales: alice = PJSIP/agent1,"
          " calls recorded (with consent)")
    # A supervisor for the panel (an admin would need a TOTP app): sees leads, unmasks
    # (audited), plays recordings, reads reports.
    panel_password = DEMO / "secrets" / "panel_password"
    panel_password.write_text(secrets.token_urlsafe(12) + "\n")
    panel_password.chmod(0o600)
    callengine("user", "add", "demo", "supervisor", "--password-file", str(panel_password))
    env = {**os.environ}
    log = open(DEMO / "engine.log", "wb")
    engine = subprocess.Popen(
        [str(REPO / ".venv/bin/callengine"), "--config", str(DEMO / "callengine.toml"), "run"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    page = serve_page(public_key)
    print(f"demo page embedding the widget: {PAGE_ORIGIN}/  (Polish: {PAGE_ORIGIN}/?lang=pl)")
    print(f"panel: http://127.0.0.1:{PORT}/panel/  log in as demo (supervisor), password"
          f" {panel_password.read_text().strip()}  (in {panel_password})")
    try:
        # Alice answers after 1.5 s; the visitor after 2 s and hangs up after 5 s of talk.
        with Phone(5081, "answer", tone_hz=440, answer_after_ms=1500), \
                Phone(5070, "answer", tone_hz=1000, answer_after_ms=2000, hangup_after_ms=5000):
            lead_id = asyncio.run(follow(public_key))
        print("panel, logged in as demo: "
              + asyncio.run(log_in_to_panel(panel_password.read_text().strip())))
        if "--serve" in sys.argv[1:]:
            print(f"serving the demo page at {PAGE_ORIGIN}/ and the engine; Ctrl-C ends")
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
    finally:
        page.shutdown()
        engine.send_signal(signal.SIGTERM)
        engine.wait(15)
    shown = json.loads(callengine("lead", "show", lead_id))
    attempt = shown["attempts_detail"][0]
    print(f"stored: outcome {shown['outcome']}, agent {attempt['agent']},"
          f" agent rang {attempt['agent_ring_s']:.1f} s, visitor rang"
          f" {attempt['visitor_ring_s']:.1f} s, talk {attempt['talk_s']:.1f} s,"
          f" Q.850 cause {attempt['q850']} ({attempt['cause'] or '-'})")
    recording, = json.loads(callengine("recording", "list", "--lead", lead_id))
    print(f"recording {recording['id']}: {recording['status']}, {recording['duration_s']:.1f} s"
          f" at {recording['sample_rate'] / 1000:g} kHz, {recording['segments']} AES-256-GCM"
          f" segments, key id {recording['key_id']}")
    print("  " + callengine("recording", "verify", recording["id"]).splitlines()[0])
    plaintext = [p for p in (DEMO / "recordings").iterdir() if not p.name.endswith(".cerec")]
    print(f"  files under {DEMO / 'recordings'}: "
          f"{len(list((DEMO / 'recordings').iterdir()))} ciphertext, {len(plaintext)} other")
    print(f"engine log: {DEMO / 'engine.log'}  (numbers masked, e.g. "
          f"{shown['phone']})")
    ok = shown["outcome"] == "connected" and recording["status"] == "complete"
    return 0 if ok and not plaintext else 1


if __name__ == "__main__":
    raise SystemExit(main())
