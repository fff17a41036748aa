"""Writes one benchmark's section into BENCHMARKS.md, leaving the other sections as they are."""

import pathlib
import platform
import re

import psutil

PATH = pathlib.Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nEach section is written by the script it names; rerun it to refresh.\n"


def machine() -> str:
    """A one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    python = platform.python_version()
    return f"{cpu}, {psutil.cpu_count()} cores, {memory:.0f} GiB RAM, Python {python}"


def write_section(title: str, body: str) -> None:
    """Replaces (or appends) the ``## title`` section of BENCHMARKS.md with ``body``."""
    text = PATH.read_text(encoding="utf-8") if PATH.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    temporary = PATH.with_suffix(".md.tmp")
    temporary.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
    temporary.replace(PATH)
