"""``tpd-qa serve``: check the address, make sure there is an index, run the server."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Final

from tpd_qa.api import configured_model
from tpd_qa.errors import ConfigError
from tpd_qa.uploads import UPLOAD_MAX_BYTES
from tpd_qa.web.app import WebApp
from tpd_qa.web.layout import build_ui, stylesheet, theme

__all__ = ["QUEUE_SIZE", "SEARCH_CONCURRENCY", "check_port", "is_loopback", "serve"]

#: Questions answered at once. Search holds a lock only around the model/index calls
#: (tens of milliseconds); the rest (context, highlighting, HTML) runs in parallel.
SEARCH_CONCURRENCY: Final = 8
#: Requests allowed to wait in Gradio's queue before new ones are turned away.
QUEUE_SIZE: Final = 256


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def check_port(host: str, port: int) -> None:
    """Fail early (before any indexing) when ``host:port`` cannot be listened on."""
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a valid port number (1-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot resolve host {host!r}: {exc}") from exc
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"fails ({exc})"
            raise ConfigError(
                f"listening on {host}:{port} {reason}: choose another with --port"
            ) from exc


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    *,
    corpus_dir: str | Path,
    index_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    allow_upload: bool = False,
    watch: bool = False,
) -> None:
    """Serve the web UI until interrupted; builds the index first when there is none.

    With ``watch`` the corpus is watched and re-indexed as files come and go (the same
    incremental rebuild as ``tpd-qa index``); the page shows the watcher's state live.
    """

    def echo(line: str) -> None:
        print(line, flush=True)

    check_port(host, port)
    app = WebApp(corpus_dir, index_dir, allow_upload=allow_upload, model=configured_model())
    app.ensure_index(echo)
    app.warm_up()
    watcher = None
    if watch:
        from tpd_qa.watch import CorpusWatcher

        watcher = CorpusWatcher(
            corpus_dir, index_dir, model=configured_model(), initial_build=False
        )
        app.watch_status = lambda: watcher.status.describe()
        watcher.start()
        echo("tpd-qa: watching the corpus; new and changed files are indexed on their own")
    demo = build_ui(app)
    demo.queue(default_concurrency_limit=SEARCH_CONCURRENCY, max_size=QUEUE_SIZE)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=True,
            quiet=True,
            show_error=False,
            ssr_mode=False,
            inbrowser=False,
            share=False,
            theme=theme(),
            css=stylesheet(),
            max_file_size=UPLOAD_MAX_BYTES if allow_upload else 1024,
            footer_links=["api"],
        )
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc}") from exc
    shown = f"[{host}]" if ":" in host else host
    echo(f"tpd-qa: serving http://{shown}:{port}/  (Ctrl+C to stop)")
    if is_loopback(host):
        echo("tpd-qa: bound to loopback only; use --host 0.0.0.0 to serve other machines")
    else:
        echo(f"tpd-qa: warning: listening on {host}, reachable from other machines")
    echo(f"tpd-qa: uploads are {'ON' if allow_upload else 'off (use --allow-upload)'}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops as cleanly as Ctrl+C
    try:
        demo.block_thread()
    finally:
        if watcher is not None:
            watcher.stop()
        with contextlib.suppress(Exception):
            demo.close()
        sys.stdout.flush()
