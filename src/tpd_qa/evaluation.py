"""Retrieval evaluation (placeholder until the eval command lands)."""

from __future__ import annotations

import argparse

__all__ = ["add_eval_arguments", "run_eval_command"]


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="a BEIR folder or a QA .jsonl file")


def run_eval_command(args: argparse.Namespace) -> int:
    raise SystemExit("tpd-qa eval: not implemented yet")
