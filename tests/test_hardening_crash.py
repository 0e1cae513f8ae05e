"""Promise 1: a rebuild killed at any moment loses nothing and leaves nothing behind.

* ``tpd-qa index`` (a real subprocess) is killed with SIGKILL after a random delay drawn
  (seeded RNG) from its measured duration, 24 times across incremental and ``--full``
  rebuilds;
* the same process is also killed deterministically right before *each* filesystem
  operation of ``Index.save`` (mkdir, open, fsync, replace, rmtree, ...), so that every
  step of the commit protocol is covered whatever the timing of this machine;
* after each kill the index on disk loads and answers exactly as the old index or the
  new one (both are valid: it depends on whether the kill came after the manifest was
  replaced), the next rebuild completes and gives the new answers, and no
  ``.gen-*.partial``, ``*.tmp`` or stale ``gen-*`` entry is left;
* two rebuilds at once: the second refuses with one clear line (exit 1) and the index
  stays intact.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hardening_support import (
    answers,
    assert_clean_error,
    cli_env,
    leftovers,
    run_cli,
    token,
    write_text_corpus,
)
from tpd_qa import api
from tpd_qa.index import index_lock

pytestmark = pytest.mark.slow

MODEL = "hash:128"
QUESTIONS = [
    token(3),
    token(5),
    token(41),
    token(44),
    "semiconductor supply chain",
    "lunar rover fusion tokamak",
    "quantum research talent exchange",
]


class States:
    """Corpus A and corpus B (3 changed, 2 removed, 4 added files) and their answers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.corpus_a = root / "corpus-a"
        self.corpus_b = root / "corpus-b"
        write_text_corpus(self.corpus_a, 40, seed=1)
        shutil.copytree(self.corpus_a, self.corpus_b)
        for number in (3, 4, 5):  # changed
            path = self.corpus_b / f"doc{number:04d}.txt"
            path.write_text(path.read_text() + "\nAn amended paragraph on export controls.\n")
        for number in (10, 11):  # removed
            (self.corpus_b / f"doc{number:04d}.txt").unlink()
        write_text_corpus(self.corpus_b, 4, seed=2, first=41)  # added
        self.snapshot_a = root / "index-a"
        api.build_index(self.corpus_a, self.snapshot_a, model=MODEL)
        snapshot_b = root / "index-b"
        api.build_index(self.corpus_b, snapshot_b, model=MODEL)
        self.answers_a = answers(self.snapshot_a, QUESTIONS)
        self.answers_b = answers(snapshot_b, QUESTIONS)
        assert self.answers_a != self.answers_b

    def fresh_index(self, name: str) -> Path:
        """A copy of index A to run one trial against."""
        target = self.root / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.snapshot_a, target)
        return target

    def check_after_kill(self, index_dir: Path) -> str:
        """The index answers as A or as B; a rebuild then gives B and leaves no debris."""
        now = answers(index_dir, QUESTIONS)
        assert now in (self.answers_a, self.answers_b), "index answers neither old nor new"
        state = "A" if now == self.answers_a else "B"
        report = api.build_index(self.corpus_b, index_dir, model=MODEL)
        assert not report.skipped
        assert answers(index_dir, QUESTIONS) == self.answers_b
        assert leftovers(index_dir) == []
        return state


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> States:
    return States(tmp_path_factory.mktemp("crash"))


def _index_command(index_dir: Path, corpus: Path, full: bool) -> list[str]:
    args = [sys.executable, "-m", "tpd_qa", "index", "--quiet"]
    args += ["--corpus", str(corpus), "--index", str(index_dir)]
    return [*args, "--full"] if full else args


def _measure(states: States, full: bool) -> float:
    index_dir = states.fresh_index("measure")
    started = time.perf_counter()
    done = subprocess.run(
        _index_command(index_dir, states.corpus_b, full),
        env=cli_env(TPD_QA_MODEL=MODEL),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - started


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_kill_9_at_random_moments(states: States, full: bool) -> None:
    """12 trials per kind of rebuild (24 in all), each killed after a seeded random delay."""
    duration = _measure(states, full)
    rng = random.Random(20261125 + full)
    outcomes = []
    for trial in range(12):
        index_dir = states.fresh_index(f"trial-{int(full)}-{trial}")
        process = subprocess.Popen(
            _index_command(index_dir, states.corpus_b, full),
            env=cli_env(TPD_QA_MODEL=MODEL),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.0, 0.95 * duration))
        process.send_signal(signal.SIGKILL)
        code = process.wait(timeout=60)
        outcomes.append((code, states.check_after_kill(index_dir)))
        shutil.rmtree(index_dir)
    print(f"duration {duration:.2f} s; (exit code, state after kill): {outcomes}")


# Kills the process with SIGKILL right before the N-th filesystem operation that
# Index.save makes (N = argv[1]); with N = 0 it runs through and prints how many there were.
_STEP_KILLER = r"""
import builtins, os, shutil, signal, sys
from tpd_qa import cli
from tpd_qa.index import Index

target = int(sys.argv[1])
state = {"active": False, "count": 0}

def hook(module, name):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        if state["active"]:
            state["count"] += 1
            if state["count"] == target:
                os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    setattr(module, name, wrapper)

for module, name in [
    (builtins, "open"), (os, "open"), (os, "replace"), (os, "rename"), (os, "fsync"),
    (os, "mkdir"), (os, "unlink"), (os, "rmdir"), (shutil, "rmtree"),
]:
    hook(module, name)

original_save = Index.save_to  # what ``Index.save`` and ``build_index`` both call
def save(self, store):
    state["active"] = True
    try:
        return original_save(self, store)
    finally:
        state["active"] = False
Index.save_to = save
code = cli.main(sys.argv[2:])
print(f"operations={state['count']}")
sys.exit(code)
"""


def test_kill_9_before_every_save_step(states: States) -> None:
    """SIGKILL right before each filesystem operation of the save: A or B, never broken."""
    index_dir = states.fresh_index("steps-count")
    base = ["index", "--quiet", "--corpus", str(states.corpus_b), "--index", str(index_dir)]
    counted = subprocess.run(
        [sys.executable, "-c", _STEP_KILLER, "0", *base],
        env=cli_env(TPD_QA_MODEL=MODEL),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert counted.returncode == 0, counted.stderr
    total = int(counted.stdout.strip().rsplit("operations=", 1)[1])
    assert total >= 10
    steps = list(range(1, total + 1))
    if len(steps) > 40:  # keep the run short: an even sample that includes the last step
        steps = sorted({steps[round(i * (total - 1) / 39)] for i in range(40)})
    seen = {}
    for step in steps:
        index_dir = states.fresh_index(f"step-{step}")
        base[-1] = str(index_dir)
        killed = subprocess.run(
            [sys.executable, "-c", _STEP_KILLER, str(step), *base],
            env=cli_env(TPD_QA_MODEL=MODEL),
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        seen[step] = states.check_after_kill(index_dir)
        shutil.rmtree(index_dir)
    # The commit point is one os.replace: early kills keep A, the latest ones give B.
    assert seen[steps[0]] == "A"
    assert seen[steps[-1]] == "B"
    assert "".join(seen.values()).count("AB") == 1, seen


def test_second_rebuild_refuses_while_one_holds_the_lock(states: States) -> None:
    index_dir = states.fresh_index("locked")
    with index_lock(index_dir):
        result = run_cli(
            ["index", "--quiet", "--corpus", str(states.corpus_b), "--index", str(index_dir)],
            env=cli_env(TPD_QA_MODEL=MODEL),
        )
    assert_clean_error(result, "another `tpd-qa index` is rebuilding")
    assert answers(index_dir, QUESTIONS) == states.answers_a
    assert leftovers(index_dir) == []


def test_two_real_rebuilds_at_once(states: States) -> None:
    """Started together: each one either completes or refuses clearly; the index is B."""
    for trial in range(3):
        index_dir = states.fresh_index(f"race-{trial}")
        command = _index_command(index_dir, states.corpus_b, full=True)
        processes = [
            subprocess.Popen(
                command,
                env=cli_env(TPD_QA_MODEL=MODEL),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in processes]
        for process in processes:
            for stream in (process.stdout, process.stderr):
                if stream:
                    stream.close()
        assert any(code == 0 for code, _ in results), results
        for code, stderr in results:
            assert "Traceback" not in stderr
            if code != 0:
                assert code == 1
                assert "another `tpd-qa index` is rebuilding" in stderr
        assert answers(index_dir, QUESTIONS) == states.answers_b
        assert leftovers(index_dir) == []
        shutil.rmtree(index_dir)
