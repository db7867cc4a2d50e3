"""Headless Chromium driven over its DevTools protocol on a pipe (``--remote-debugging-pipe``): no library.

Messages are JSON, each ended by a NUL byte; Chromium reads file descriptor 3 and writes 4.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path


class Browser:
    """One headless Chromium with one page, for tests that need a page's scripts to run."""

    def __init__(self, chromium: Path, profile: Path):
        read_3, write_ours = os.pipe()  # we write what Chromium reads on its fd 3
        read_ours, write_4 = os.pipe()  # Chromium writes on its fd 4 what we read
        command = (f"exec {chromium} --headless --no-sandbox --disable-gpu --disable-background-networking "
                   f"--no-first-run --user-data-dir={profile} --remote-debugging-pipe --window-size=1400,1000 "
                   f"3<&{read_3} 4>&{write_4}")
        self.process = subprocess.Popen(["bash", "-c", command], pass_fds=(read_3, write_4),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(read_3)
        os.close(write_4)
        self._out = os.fdopen(write_ours, "wb", buffering=0)
        self._in = os.fdopen(read_ours, "rb", buffering=0)
        self._buffer, self._id, self._session = b"", 0, None

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = self._in.read(65536)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if self._session and not method.startswith("Target."):
            message["sessionId"] = self._session
        self._out.write(json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str, wait: float = 3.0) -> None:
        """Load ``url`` in the page (made on first use) and give its scripts ``wait`` seconds."""
        if self._session is None:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.navigate", {"url": url})
        time.sleep(wait)

    def js(self, expression: str):
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(json.dumps(result["exceptionDetails"])[:500])
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 120):
        """The first truthy value of ``expression``, polled each second."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(1)
        raise TimeoutError(f"{expression[:80]} stayed false for {timeout} s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
