"""Start-up: time to first answer for ``tpd-qa ask`` and ``tpd-qa serve`` (fresh processes).

    .venv/bin/python bench/bench_startup.py [--runs 3]

Indexes corpus/ into a temporary folder first (not timed). ``ask`` is timed from process
start to exit with the passages printed; ``serve`` from process start to the first
answer of its ``/search`` API (gradio_client), then the server is stopped. Also checks
that importing the CLI does not import Gradio, torch or ranx. Writes
bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import CORPUS, ROOT, machine, write_results

TPD_QA = ROOT / ".venv" / "bin" / "tpd-qa"
PYTHON = Path(sys.executable)
QUESTION = "Which facility will help commercialize fusion?"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _time_ask(index: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(TPD_QA), "ask", QUESTION, "--index", str(index), "-k", "3"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _time_serve(corpus: Path, index: Path, env: dict[str, str]) -> float:
    from gradio_client import Client

    port = _free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(TPD_QA), "serve", "--corpus", str(corpus), "--index", str(index), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("tpd-qa serve exited early") from None
                time.sleep(0.05)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = client.predict(QUESTION, 3, "hybrid", None, api_name="/search")
        elapsed = time.perf_counter() - started
        assert result, "no passages"
        return elapsed
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-serve", action="store_true")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    probe = subprocess.run(
        [
            str(PYTHON),
            "-c",
            "import sys, time; t = time.perf_counter(); import tpd_qa.cli; "
            "print(time.perf_counter() - t); "
            "print(sorted(m for m in ('gradio', 'torch', 'ranx', 'faiss') if m in sys.modules))",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.split("\n")
    import_s, heavy = float(probe[0]), probe[1]
    with tempfile.TemporaryDirectory() as temporary:
        index = Path(temporary) / "index"
        subprocess.run(
            [str(TPD_QA), "index", "--corpus", str(CORPUS), "--index", str(index), "--quiet"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        ask = [_time_ask(index, env) for _ in range(args.runs)]
        serve = [] if args.no_serve else [_time_serve(CORPUS, index, env) for _ in range(args.runs)]
    result = {
        "cli_import_s": round(import_s, 3),
        "heavy_modules_after_cli_import": heavy,
        "ask_s": [round(v, 2) for v in ask],
        "ask_median_s": round(statistics.median(ask), 2),
        "serve_first_answer_s": [round(v, 2) for v in serve],
        "serve_median_s": round(statistics.median(serve), 2) if serve else None,
    }
    write_results("startup", result)
    print(f"machine: {machine()['cpu']}, {machine()['cores']} cores")
    print(f"import tpd_qa.cli: {import_s * 1000:.0f} ms; heavy modules loaded by it: {heavy}")
    print(f"tpd-qa ask, process start to answer: median {result['ask_median_s']} s ({ask})")
    if serve:
        print(
            f"tpd-qa serve, process start to first /search answer: median "
            f"{result['serve_median_s']} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
