"""Render a page in headless Chromium and wait until given texts are on it.

``--dump-dom`` with a virtual-time budget snapshots the page when *virtual* time runs out; a
report whose data is decoded by real-time work (the Allure single-file report) is then dumped
half-drawn on a loaded machine. This drives Chromium over the DevTools protocol instead: load
the page, then wait (a MutationObserver inside the page, no polling) until every wanted text is
in the page's rendered text (``innerText``), or a real-time deadline passes.
"""

from __future__ import annotations

import asyncio
import json
import queue
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import aiohttp

_START_TIMEOUT_SECONDS = 60
_LISTENING = re.compile(r"DevTools listening on (ws://[^\s]+)")

# resolves with the document once every wanted text is in it; re-checked on each DOM change
_WAIT_FOR_TEXTS = """
new Promise((resolve) => {
  const wanted = %s;
  const html = () => document.documentElement ? document.documentElement.outerHTML : "";
  // what a reader sees: rendered text, not the scripts' source
  const done = () => document.body !== null && wanted.every((text) => document.body.innerText.includes(text));
  if (done()) { resolve(html()); return; }
  const observer = new MutationObserver(() => {
    if (done()) { observer.disconnect(); resolve(html()); }
  });
  observer.observe(document, {subtree: true, childList: true, characterData: true});
})
"""


@dataclass(frozen=True)
class Rendered:
    dom: str
    missing: list[str]


class _DevTools:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 0
        self._events: list[dict] = []

    async def _receive(self) -> dict:
        message = await self._ws.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"the DevTools connection ended ({message.type.name}): did Chromium exit?")
        return json.loads(message.data)

    async def call(self, method: str, **params: object) -> dict:
        self._next_id += 1
        call_id = self._next_id
        await self._ws.send_str(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = await self._receive()
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method} failed: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    async def event(self, method: str) -> dict:
        for seen in self._events:
            if seen.get("method") == method:
                return seen
        while True:
            message = await self._receive()
            if message.get("method") == method:
                return message


def _start(chromium: str, profile: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    endpoint: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def drain() -> None:  # keeps reading, so a chatty Chromium never blocks on a full pipe
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            found = _LISTENING.search(line)
            if found:
                endpoint.put(found.group(1))
        endpoint.put(None)  # EOF: Chromium exited

    threading.Thread(target=drain, daemon=True).start()
    try:
        browser_ws = endpoint.get(timeout=_START_TIMEOUT_SECONDS)
    except queue.Empty:
        browser_ws = None
    if browser_ws is None:
        process.kill()
        process.wait(timeout=30)
        raise RuntimeError(f"Chromium (exit {process.returncode}) gave no DevTools endpoint within "
                           f"{_START_TIMEOUT_SECONDS} s: {''.join(log)[-2000:]}")
    return process, browser_ws


async def _load_and_wait(tools: _DevTools, url: str, wanted: list[str]) -> str:
    await tools.call("Page.enable")
    await tools.call("Page.navigate", url=url)
    await tools.event("Page.loadEventFired")
    result = await tools.call("Runtime.evaluate", expression=_WAIT_FOR_TEXTS % json.dumps(wanted),
                              awaitPromise=True, returnByValue=True)
    return result["result"]["value"]


async def _render(browser_ws: str, url: str, wanted: list[str], timeout: float) -> Rendered:
    http_root = "http://" + browser_ws.split("/")[2]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{http_root}/json/list") as reply:
            pages = [t for t in await reply.json(content_type=None) if t.get("type") == "page"]
        if not pages:
            raise RuntimeError(f"Chromium at {http_root} lists no page to load {url} into")
        page_ws = pages[0]["webSocketDebuggerUrl"]
        async with http.ws_connect(page_ws, max_msg_size=0) as ws:
            try:  # the deadline covers the load too: a page whose load never ends fails here, not by hanging
                return Rendered(await asyncio.wait_for(_load_and_wait(_DevTools(ws), url, wanted), timeout), [])
            except asyncio.TimeoutError:
                pass
        async with http.ws_connect(page_ws, max_msg_size=0) as ws:  # what the page shows at the deadline
            tools = _DevTools(ws)
            dom = (await tools.call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                                    returnByValue=True))["result"]["value"]
            shown = (await tools.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                                      returnByValue=True))["result"]["value"]
            return Rendered(dom, [text for text in wanted if text not in shown])


def render_until(chromium: str, url: str, wanted: list[str], profile: Path, *, timeout: float = 90.0) -> Rendered:
    """Open ``url`` and wait up to ``timeout`` seconds for every text in ``wanted`` to be in its DOM.

    Returns the DOM and the texts still missing at the deadline (empty when all showed up)."""
    process, browser_ws = _start(chromium, profile)
    try:
        return asyncio.run(_render(browser_ws, url, wanted, timeout))
    finally:
        process.kill()
        process.wait(timeout=30)
