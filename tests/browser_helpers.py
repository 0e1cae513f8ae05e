"""Helpers for the browser tests: run ``tpd-qa serve`` in a subprocess, drive Chromium."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
QUESTION = "#tq-question textarea, #tq-question input"
STARTUP_SECONDS = 240.0
#: How long an answer may take in the page: a real-model search on 2 busy cores can pass
#: Playwright's default 30 s (a slow machine, not a wrong answer).
ANSWER_SECONDS = 90.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A ``python -m tpd_qa serve`` subprocess and where it serves."""

    process: subprocess.Popen[bytes]
    url: str
    corpus: Path
    index: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def server_env(model: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPD_QA_")}
    env.update(HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    if model:
        env["TPD_QA_MODEL"] = model
    return env


def start_server(
    corpus: Path,
    index: Path,
    log: Path,
    *,
    model: str | None,
    allow_upload: bool = False,
    watch: bool = False,
) -> Server:
    """Start serving (returns at once; call :func:`wait_ready` before using it)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tpd_qa",
        "serve",
        "--port",
        str(port),
        "--corpus",
        str(corpus),
        "--index",
        str(index),
    ]
    if allow_upload:
        command.append("--allow-upload")
    if watch:
        command.append("--watch")
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=server_env(model), cwd=ROOT
        )
    return Server(process, f"http://127.0.0.1:{port}/", corpus, index, log)


def wait_ready(server: Server, timeout: float = STARTUP_SECONDS) -> None:
    """Wait until the server prints its URL and answers HTTP; fail with its log if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited ({server.process.returncode}):\n{server.output()}")
        if "tpd-qa: serving" in server.output():
            with (
                contextlib.suppress(urllib.error.URLError, OSError),
                urllib.request.urlopen(server.url, timeout=5) as response,
            ):
                if response.status == 200:
                    return
        time.sleep(0.25)
    stop_server(server)
    raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{server.output()}")


def stop_server(server: Server) -> None:
    """Stop the server (SIGTERM: a clean shutdown), killing it if it does not stop."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[tuple[Server, ...]]:
    """Wait for all ``servers`` (started in parallel) and stop them all afterwards."""
    try:
        for server in servers:
            wait_ready(server)
        yield servers
    finally:
        for server in servers:
            stop_server(server)


def open_page(browser: Any, url: str, **context_options: Any) -> Any:
    """A new page (in its own context) showing the app, ready for typing."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector(QUESTION)
    return page


def ask(page: Any, question: str) -> Any:
    """Type ``question``, press Enter, wait for its answer; returns the results element."""
    before = answer_markup(page)
    box = page.locator(QUESTION).first
    box.fill(question)
    box.press("Enter")
    return wait_answer(page, question, before)


_CONTENT = "#tq-results .tq-results, #tq-results .tq-state"


def answer_markup(page: Any) -> str:
    """The markup of what the results area shows now (not Gradio's spinner around it)."""
    return str(page.evaluate(f"document.querySelector({_CONTENT!r})?.outerHTML ?? ''"))


def wait_answer(page: Any, question: str, before: str) -> Any:
    """Wait until the results area changed from ``before`` to the answer for ``question``

    (or to a state message such as "Type a question first")."""
    page.wait_for_function(
        """([q, before, selector]) => {
            const shown = document.querySelector(selector);
            if (!shown || shown.outerHTML === before) return false;
            const asked = shown.querySelector('.tq-summary q');
            return (asked && asked.textContent === q) || shown.classList.contains('tq-state');
        }""",
        arg=[question, before, _CONTENT],
        timeout=ANSWER_SECONDS * 1000,
    )
    return page.locator("#tq-results")


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under artifacts/screenshots/ (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def require_chromium() -> None:
    """Skip the calling test module when Debian's Chromium is missing (``scripts/setup.sh
    test`` installs it; Playwright never downloads a browser here)."""
    if not CHROMIUM.exists():  # pragma: no cover
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM})", allow_module_level=True)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
