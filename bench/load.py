"""Load test: many concurrent clients ask through the Gradio API while the index is rebuilt.

Starts ``python -m tpd_qa serve`` on a free loopback port over a copy of ``corpus/``
(plus generated filler documents), then runs ``--clients`` threads, each its own
``gradio_client.Client``, asking ``--questions`` questions through the ``/search``
endpoint. Meanwhile ``tpd-qa index`` runs again and again in another process, each time
after adding a new file to the corpus, so the server switches index generations under
load. Every answer is checked: a list of passages whose citations point at the exact
text in the corpus file. Prints p50/p95/max latency, throughput and failures, and writes
``bench/results/load-<model>-<clients>x<questions>.json``.

    .venv/bin/python bench/load.py                      # 50 clients x 20, bundled model
    .venv/bin/python bench/load.py --model hash --clients 10 --questions 5

Exit status 0 when no request failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
QA_FILE = ROOT / "data" / "memorandum_qa.jsonl"
FALLBACK_QUESTIONS = (
    "Does the deal commit any money?",
    "Which facility will help commercialize fusion?",
    "Who signed the memorandum?",
    "What will the two countries do about submarine cables?",
    "How will they cooperate on quantum technology?",
    "What does the memorandum say about semiconductors?",
    "Which agencies work on space exploration?",
    "What about artificial intelligence standards?",
)
_FILLER_WORDS = [
    "semiconductor",
    "lithography",
    "quantum",
    "fusion",
    "lunar",
    "tokamak",
    "supply",
    "chain",
    "memorandum",
    "artificial",
    "intelligence",
    "biotechnology",
    "shipbuilding",
    "energy",
    "grid",
    "reactor",
    "minerals",
    "export",
    "controls",
    "research",
    "standards",
    "satellites",
    "investment",
    "partnership",
    "security",
]


@dataclass
class LoadResult:
    """What one load run measured."""

    model: str
    clients: int
    questions_per_client: int
    requests: int = 0
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    throughput_rps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    rebuilds: int = 0
    rebuild_failures: int = 0
    generations_seen: int = 0
    server_start_seconds: float = 0.0
    machine: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lat = self.latency_ms
        return (
            f"{self.requests} requests ({self.clients} clients x {self.questions_per_client}) "
            f"with model {self.model}: {self.failures} failed; "
            f"p50 {lat.get('p50', 0):.0f} ms, p95 {lat.get('p95', 0):.0f} ms, "
            f"max {lat.get('max', 0):.0f} ms; {self.throughput_rps:.1f} requests/s; "
            f"{self.rebuilds} rebuilds during the run ({self.rebuild_failures} failed)"
        )


# ---------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m tpd_qa serve`` in a subprocess; output goes to ``log``.

    ``prelude`` is Python code run in the server process before the CLI (tests use it
    to install a network guard).
    """

    def __init__(
        self,
        corpus: Path,
        index: Path,
        log: Path,
        *,
        model: str | None,
        extra_args: Sequence[str] = (),
        prelude: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.corpus, self.index, self.log = corpus, index, log
        args = ["serve", "--port", str(self.port), "--corpus", str(corpus), "--index", str(index)]
        code = prelude + "\nimport sys\nfrom tpd_qa.cli import main\nsys.exit(main(sys.argv[1:]))\n"
        environment = dict(env if env is not None else server_env(model))
        self._log_handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args, *extra_args],
            env=environment,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            cwd=corpus.parent,
        )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Wait until the server says it is serving and answers HTTP; returns seconds."""
        import urllib.request

        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}):\n{self.output()}")
            if "tpd-qa: serving" in self.output():
                try:
                    with urllib.request.urlopen(self.url + "config", timeout=5) as response:
                        if response.status == 200:
                            return time.perf_counter() - started
                except OSError:
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout:.0f} s:\n{self.output()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log_handle.close()
        return int(self.process.returncode)


def server_env(model: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPD_QA_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False")
    if model:
        env["TPD_QA_MODEL"] = model
    return env


# ---------------------------------------------------------------------------- load


def load_questions(count: int) -> list[str]:
    """The memorandum QA questions (or a built-in list), repeated to ``count``."""
    pool: list[str] = []
    if QA_FILE.is_file():
        for line in QA_FILE.read_text(encoding="utf-8").splitlines():
            if line.strip():
                pool.append(json.loads(line)["question"])
    pool = pool or list(FALLBACK_QUESTIONS)
    return [pool[i % len(pool)] for i in range(count)]


def make_corpus(folder: Path, filler: int = 20, seed: int = 0) -> Path:
    """``corpus/`` plus ``filler`` generated documents (so a rebuild has work to do)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "corpus").glob("*")):
        if path.is_file():
            shutil.copy(path, folder / path.name)
    rng = random.Random(seed)
    for number in range(filler):
        paragraphs = [
            " ".join(rng.choice(_FILLER_WORDS) for _ in range(60)).capitalize() + "."
            for _ in range(6)
        ]
        (folder / f"filler-{number:03d}.txt").write_text(
            f"Filler {number}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8"
        )
    return folder


def _check_rows(rows: Any, corpus: Path, texts: dict[str, str]) -> str:
    """'' when ``rows`` are well-formed passages citing the exact text of their file."""
    if not isinstance(rows, list) or not rows:
        return f"expected a non-empty list of passages, got {str(rows)[:200]}"
    for row in rows:
        source, start, end = row.get("source"), row.get("start"), row.get("end")
        if not isinstance(source, str) or not row.get("citation"):
            return f"malformed passage {str(row)[:200]}"
        if source not in texts:
            path = corpus / source
            if not path.is_file():
                return f"cites {source}, which is not in the corpus"
            texts[source] = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        if texts[source][start:end] != row.get("text"):
            return f"citation {row.get('citation')} does not match the text of {source}"
    return ""


def run_load(
    url: str,
    corpus: Path,
    *,
    clients: int,
    questions: int,
    model: str,
    rebuild: bool = True,
    index: Path | None = None,
    hostile: bool = False,
) -> LoadResult:
    """Run the load against a serving ``url``; rebuild ``index`` from ``corpus`` meanwhile."""
    from gradio_client import Client

    result = LoadResult(model=model, clients=clients, questions_per_client=questions)
    asked = load_questions(clients * questions)
    latencies: list[float] = []
    lock = threading.Lock()
    texts: dict[str, str] = {}
    start_gate = threading.Barrier(clients + 1)
    stop = threading.Event()

    def fail(message: str) -> None:
        with lock:
            result.failures += 1
            if len(result.failure_samples) < 10:
                result.failure_samples.append(message)

    def client(number: int) -> None:
        try:
            connection = Client(url, verbose=False)
        except Exception as exc:
            fail(f"client {number} could not connect: {type(exc).__name__}: {exc}")
            start_gate.wait()
            return
        start_gate.wait()
        for turn in range(questions):
            question = asked[number * questions + turn]
            if hostile and turn % 5 == 4:
                question = ["", "?!?!", "日米の半導体協力", "x" * 20_000, "\x00\x1b"][number % 5]
            began = time.perf_counter()
            try:
                rows = connection.predict(question, 5, "hybrid", None, api_name="/search")
            except Exception as exc:
                elapsed = time.perf_counter() - began
                if hostile and turn % 5 == 4 and "question" in str(exc):
                    with lock:
                        latencies.append(elapsed)
                        result.requests += 1
                    continue  # a clear error for an unusable question is the right answer
                fail(f"{question[:60]!r}: {type(exc).__name__}: {str(exc)[:300]}")
                continue
            elapsed = time.perf_counter() - began
            problem = _check_rows(rows, corpus, texts) if not (hostile and turn % 5 == 4) else ""
            with lock:
                latencies.append(elapsed)
                result.requests += 1
            if problem:
                fail(f"{question[:60]!r}: {problem}")

    def rebuilder() -> None:
        number = 0
        env = server_env(model if model != "default" else None)
        seen = set()
        while not stop.is_set():
            (corpus / f"added-{number:03d}.txt").write_text(
                f"Added during the load test, number {number}: lunar rovers and fusion.\n",
                encoding="utf-8",
            )
            command = [sys.executable, "-m", "tpd_qa", "index", "--quiet"]
            command += ["--corpus", str(corpus), "--index", str(index)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            with lock:
                result.rebuilds += 1
                if done.returncode not in (0, 3):
                    result.rebuild_failures += 1
                    if len(result.failure_samples) < 10:
                        result.failure_samples.append(f"rebuild: {done.stderr.strip()[-300:]}")
            manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[operator]
            seen.add(manifest["generation"])
            result.generations_seen = len(seen)
            number += 1
            stop.wait(0.5)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    background = None
    if rebuild and index is not None:
        background = threading.Thread(target=rebuilder, daemon=True)
        background.start()
    for thread in threads:
        thread.join()
    result.wall_seconds = time.perf_counter() - began
    stop.set()
    if background is not None:
        background.join(timeout=600)
    if latencies:
        ordered = sorted(latencies)
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        result.latency_ms = {
            "p50": round(1000 * statistics.median(ordered), 1),
            "p95": round(1000 * cuts[94], 1),
            "p99": round(1000 * cuts[98], 1),
            "max": round(1000 * ordered[-1], 1),
            "mean": round(1000 * statistics.fmean(ordered), 1),
        }
    result.throughput_rps = round(result.requests / result.wall_seconds, 2)
    return result


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="ignore").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=20, help="questions per client")
    parser.add_argument("--model", default="default", help="'default' (bundled) or 'hash'")
    parser.add_argument("--no-rebuild", action="store_true", help="no rebuild during the run")
    parser.add_argument("--filler", type=int, default=20, help="generated documents to add")
    parser.add_argument("--output", type=Path, help="results JSON (default: bench/results/)")
    args = parser.parse_args(argv)

    workspace = Path(tempfile.mkdtemp(prefix="tpd-qa-load-"))
    corpus = make_corpus(workspace / "corpus", args.filler)
    index = workspace / "index"
    server = Server(
        corpus,
        index,
        workspace / "server.log",
        model=None if args.model == "default" else args.model,
    )
    try:
        startup = server.wait_ready()
        print(f"server ready at {server.url} in {startup:.1f} s", flush=True)
        result = run_load(
            server.url,
            corpus,
            clients=args.clients,
            questions=args.questions,
            model=args.model,
            rebuild=not args.no_rebuild,
            index=index,
        )
        result.server_start_seconds = round(startup, 1)
    finally:
        server.stop()
    result.machine = machine()
    print(result.summary())
    for sample in result.failure_samples:
        print(f"  failure: {sample}")
    output = args.output or RESULTS / f"load-{args.model}-{args.clients}x{args.questions}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}")
    shutil.rmtree(workspace, ignore_errors=True)
    return 0 if result.failures == 0 and result.rebuild_failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
