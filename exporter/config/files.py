"""Reading config files safely: regular files only, bounded in size, YAML aliases bounded.

A config path that names a FIFO blocks the reader forever, ``/dev/zero`` never ends, and
a YAML "billion laughs" of a few hundred bytes expands to gigabytes once its aliases are
walked (environment substitution, defaults merge, validation): each is refused here with
an error naming what is wrong, before anything is expanded.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import yaml

MAX_FILE_BYTES = 1024 * 1024  # a config of many targets is a few KB
MAX_YAML_NODES = 100_000  # nodes after expanding aliases (a big config has a few thousand)


class FileProblem(Exception):
    """What is wrong with the file, as a sentence for the operator."""


def read_text_file(path: str | os.PathLike[str], limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text (a BOM is dropped) of a regular file of at most ``limit`` bytes."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then rejects it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileProblem("file not found") from None
    except OSError as exc:
        raise FileProblem(f"cannot read file ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileProblem(f"not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileProblem(f"file is larger than {limit} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileProblem("file is not UTF-8 text") from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return name
    return "not a file"


def check_expanded_size(node: yaml.Node | None, limit: int = MAX_YAML_NODES) -> None:
    """Raise ``FileProblem`` if ``node`` would become more than ``limit`` values once its
    aliases are expanded (each alias counts as a full copy of what it points to)."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in sizes:
            if sizes[key] < 0:
                raise FileProblem("YAML alias refers to itself (recursive structure)")
            return sizes[key]
        sizes[key] = -1
        total = 1
        if isinstance(n, yaml.SequenceNode):
            total += sum(size(child) for child in n.value)
        elif isinstance(n, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in n.value)
        if total > limit:
            raise FileProblem(
                f"YAML expands to more than {limit} values (anchors and aliases nested "
                "too deeply: an alias bomb?)"
            )
        sizes[key] = total
        return total

    if node is not None:
        size(node)


def bounded_loader(base: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    """``base`` with the alias check between composing and constructing."""

    class Bounded(base):  # type: ignore[misc,valid-type]
        def get_single_node(self) -> Any:
            node = super().get_single_node()
            check_expanded_size(node)
            return node

    return Bounded
