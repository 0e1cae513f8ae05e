"""Helpers shared by the tests/test_hardening_*.py fault-injection tests.

Nothing here is a test. Subprocesses run ``python -m tpd_qa`` with the deterministic
``hash`` embedder so that they start in well under a second.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tpd_qa.index import Index

_VOCABULARY = """
semiconductor lithography quantum fusion lunar tokamak supply chain memorandum
artificial intelligence biotechnology shipbuilding energy grid reactor critical
minerals export controls research standards telecommunications satellites rover
investment cooperation partnership innovation security resilience talent exchange
"""
WORDS = _VOCABULARY.split()

# Python code that, run first in a process, refuses every connection, datagram and name
# lookup that is not loopback or a Unix socket, and appends each attempt (as a JSON line)
# to the file named by $NET_LOG. Used to prove that indexing, answering and serving
# make no network access.
NETWORK_GUARD = r"""
import ipaddress, json, os, socket, sys
LOG = os.environ["NET_LOG"]

def local(host):
    if host in (None, "", "localhost") or isinstance(host, bytes):
        return host in (None, "", "localhost")
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False

def record(kind, target):
    with open(LOG, "a") as log:
        log.write(json.dumps([kind, repr(target)]) + "\n")
    raise OSError(101, f"network blocked by test: {kind} {target!r}")

def check_address(kind, sock, address):
    if sock.family == socket.AF_UNIX:
        return
    host = address[0] if isinstance(address, tuple) else address
    if not local(host):
        record(kind, address)

real_connect, real_connect_ex, real_sendto = (
    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto)
def connect(self, address):
    check_address("connect", self, address)
    return real_connect(self, address)
def connect_ex(self, address):
    check_address("connect_ex", self, address)
    return real_connect_ex(self, address)
def sendto(self, data, *rest):
    check_address("sendto", self, rest[-1])
    return real_sendto(self, data, *rest)
socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = (
    connect, connect_ex, sendto)
real_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    if not local(host):
        record("getaddrinfo", host)
    return real_getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo
real_create = socket.create_connection
def create_connection(address, *args, **kwargs):
    if not local(address[0]):
        record("create_connection", address)
    return real_create(address, *args, **kwargs)
socket.create_connection = create_connection

"""

Answer = tuple[tuple[str, int, int, float], ...]


def token(number: int) -> str:
    """A made-up word that occurs in exactly one generated document."""
    return f"zq{number:04d}xv"


def write_text_corpus(
    folder: Path, count: int, *, seed: int = 0, paragraphs: int = 6, first: int = 0
) -> list[Path]:
    """``count`` plain-text documents, each holding its own ``token(n)`` in every paragraph."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(first, first + count):
        body = []
        for _ in range(paragraphs):
            words = [rng.choice(WORDS) for _ in range(55)]
            words.insert(rng.randrange(len(words)), token(number))
            body.append(" ".join(words).capitalize() + ".")
        path = folder / f"doc{number:04d}.txt"
        path.write_text(f"Document {number}\n\n" + "\n\n".join(body) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m tpd_qa`` subprocesses: hash model, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPD_QA_")}
    env.update(
        TPD_QA_MODEL="hash",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
    )
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str | bytes],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tpd_qa ARGS`` to completion, capturing text output."""
    return subprocess.run(
        [sys.executable, "-m", "tpd_qa", *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        cwd=cwd,
        check=False,
    )


def answers(index_dir: Path, questions: Sequence[str], k: int = 5) -> list[Answer]:
    """What the index on disk answers: (source, start, end, score) per passage."""
    index = Index.load(index_dir)
    return [
        tuple((p.source, p.start, p.end, p.score) for p in index.search(q, k)) for q in questions
    ]


def leftovers(index_dir: Path) -> list[str]:
    """Temporary or stale entries in an index folder (should be none after a rebuild)."""
    import json

    manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    stale = []
    for path in index_dir.iterdir():
        name = path.name
        temporary = name.endswith((".partial", ".tmp")) or name.startswith(".gen-")
        if temporary or (name.startswith("gen-") and name != manifest["generation"]):
            stale.append(name)
    return sorted(stale)


def assert_clean_error(result: subprocess.CompletedProcess[str], *must: str) -> str:
    """Exit 1, no traceback, one ``tpd-qa: error:`` line on stderr containing ``must``."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tpd-qa: error: "), lines[0]
    for text in must:
        assert text in lines[0], (text, lines[0])
    return lines[0]
