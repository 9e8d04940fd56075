"""A minimal Chrome DevTools Protocol driver for Debian's headless Chromium.

Loads a page, and reports console errors, uncaught exceptions, every network request that is not
the page itself or a data URI, what the DOM holds, and a screenshot. Just enough to test that a
report opens from disk, offline, with everything present.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--remote-debugging-port=0",
    "--window-size=1280,2000",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageReport:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    evaluated: Any = None
    screenshot_png: bytes = b""


async def inspect_page(url: str, expression: str, *, timeout: float = 30.0) -> PageReport:
    """Open ``url`` in headless Chromium, evaluate ``expression`` after load, take a screenshot."""
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="tickpath-chromium-") as profile:
        proc = await asyncio.create_subprocess_exec(
            exe,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            return await asyncio.wait_for(_drive(proc, url, expression), timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _devtools_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    while True:
        line = await proc.stderr.readline()
        if not line:
            raise RuntimeError("chromium exited before DevTools started")
        m = re.search(rb"DevTools listening on (ws://\S+)", line)
        if m:
            return m.group(1).decode()


async def _drive(proc: asyncio.subprocess.Process, url: str, expression: str) -> PageReport:
    ws_url = await _devtools_url(proc)
    report = PageReport()
    ids = itertools.count(1)
    pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
    loaded = asyncio.Event()
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:

        async def reader() -> None:
            async for msg in ws:
                data = json.loads(msg.data)
                if "id" in data and data["id"] in pending:
                    pending.pop(data["id"]).set_result(data)
                    continue
                method, params = data.get("method"), data.get("params", {})
                if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    report.console_errors.append(json.dumps(params.get("args", []))[:300])
                elif method == "Runtime.exceptionThrown":
                    report.exceptions.append(json.dumps(params.get("exceptionDetails", {}))[:300])
                elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                    report.console_errors.append(params["entry"].get("text", "")[:300])
                elif method == "Network.requestWillBeSent":
                    req_url = params.get("request", {}).get("url", "")
                    if not req_url.startswith(("data:", url)):
                        report.requests.append(req_url)
                elif method == "Page.loadEventFired":
                    loaded.set()

        async def call(method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
            i = next(ids)
            fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            pending[i] = fut
            msg: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            await ws.send_str(json.dumps(msg))
            res = await fut
            if "error" in res:
                raise RuntimeError(f"{method}: {res['error']}")
            return res.get("result", {})  # type: ignore[no-any-return]

        task = asyncio.create_task(reader())
        try:
            target = await call("Target.createTarget", {"url": "about:blank"})
            attached = await call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
            sid = attached["sessionId"]
            for domain in ("Runtime", "Log", "Network", "Page"):
                await call(f"{domain}.enable", session=sid)
            await call("Page.navigate", {"url": url}, session=sid)
            await loaded.wait()
            await asyncio.sleep(0.3)  # let late console messages arrive
            res = await call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=sid)
            report.evaluated = res.get("result", {}).get("value")
            shot = await call("Page.captureScreenshot", {"format": "png"}, session=sid)
            report.screenshot_png = base64.b64decode(shot["data"])
        finally:
            task.cancel()
    return report


def is_blank(png: bytes) -> bool:
    """True when a screenshot is one flat colour (nothing rendered)."""
    from io import BytesIO

    from PIL import Image

    img = Image.open(BytesIO(png)).convert("L")
    lo, hi = img.getextrema()
    return bool(hi - lo < 10)


def file_url(path: Path) -> str:
    return path.resolve().as_uri()
