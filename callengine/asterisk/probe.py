"""`callengine check-config`'s probes: does ARI answer with the configured credentials, does
AMI accept the configured login. Each answers one sentence an administrator can act on; no
secret is ever in it."""

from __future__ import annotations

import asyncio
import base64

import aiohttp

from callengine.asterisk.ami import AmiClient, AmiError


async def probe_ari(url: str, user: str, password: str, *, timeout: float = 5.0
                    ) -> tuple[bool, str]:
    """GET {url}/asterisk/info with the credentials: (ok, what happened)."""
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    target = url.rstrip("/") + "/asterisk/info"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(target, headers={"Authorization": auth}) as response:
                if response.status == 401:
                    return False, (f"ARI at {url} refused user {user!r} (401): check ari.user and "
                                   "the ARI password against ari.conf")
                if response.status == 200 and response.content_type == "application/json":
                    body = await response.json()
                    version = (body.get("system") or {}).get("version", "?")
                    return True, f"ARI at {url} answers as {user!r} (Asterisk {version})"
                if response.content_type != "application/json":
                    return False, (f"{url} answers HTTP {response.status}, not ARI: is res_ari "
                                   "loaded and ari.conf enabled, and is the URL's path /ari?")
                return False, f"ARI at {url} answers HTTP {response.status} {response.reason}"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        return False, (f"ARI at {url} is not reachable ({type(exc).__name__}): is Asterisk "
                       "running, and http.conf enabled on that address and port?")


async def probe_ami(host: str, port: int, user: str, secret: str, *, timeout: float = 5.0
                    ) -> tuple[bool, str]:
    """Log in to AMI and out again: (ok, what happened)."""
    client = AmiClient(host, port, user, secret, connect_timeout=timeout)
    try:
        await client.connect()
    except AmiError as exc:
        if exc.unavailable:
            return False, (f"AMI at {host}:{port} gave no login within {timeout:g} s: is "
                           "manager.conf enabled on that address and port?")
        return False, (f"AMI at {host}:{port} refused user {user!r} ({exc.message}): check "
                       "ami.user and the AMI secret against manager.conf")
    except OSError as exc:
        return False, f"AMI at {host}:{port} is not reachable ({type(exc).__name__})"
    await client.close()
    return True, f"AMI at {host}:{port} accepts user {user!r}"
