"""Which files of the build context a Dockerfile copies, and a private copy of them.

The build context is the repository root, filtered by ``.dockerignore``. Other
people edit the checkout while a build runs, so the build does not read it:
the files a Dockerfile copies are hashed and copied into a staging directory
first, and the builder sees exactly the bytes that were hashed.

``.dockerignore`` follows Docker's rules: patterns in order, the last match
wins, ``!`` re-includes, ``**`` spans directories, and a pattern that matches a
directory matches everything beneath it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .cache import ImageBuildError

_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    exclusion: bool  # a "!" line: re-includes what it matches
    text: str

    def matches(self, rel: str) -> bool:
        """The path or one of its parent directories matches (Docker's rule)."""
        if self.regex.match(rel):
            return True
        parts = rel.split("/")[:-1]
        return any(self.regex.match("/".join(parts[: i + 1])) for i in range(len(parts)))


def _compile(pattern: str) -> re.Pattern[str]:
    """A Docker (Go filepath.Match plus ``**``) pattern as a regex, as moby translates it."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1  # "**/" is "**"
                out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch in "[]^-":
            out += ch  # character classes pass through
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def _clean(path: str) -> str:
    return os.path.normpath(path.strip()).lstrip("/")


def parse_ignore(text: str) -> list[_Pattern]:
    patterns: list[_Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        cleaned = _clean(line[1:] if exclusion else line)
        if cleaned == ".":
            continue
        patterns.append(_Pattern(_compile(cleaned), exclusion, line))
    return patterns


def ignored(patterns: list[_Pattern], rel: str) -> bool:
    result = False
    for pattern in patterns:
        if pattern.exclusion == (not result):
            continue  # cannot change the outcome
        if pattern.matches(rel):
            result = not pattern.exclusion
    return result


def copy_sources(dockerfile: str) -> list[str]:
    """Context paths that COPY/ADD take from the build context (not ``--from=`` a stage)."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    sources: list[str] = []
    for line in joined.splitlines():
        words = line.strip().split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        flags: list[str] = []
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            flags.append(flag)
            rest = rest.strip()
        if any(flag.startswith("--from") for flag in flags):
            continue
        args = json.loads(rest) if rest.startswith("[") else rest.split()
        if len(args) < 2:
            raise ImageBuildError(f"cannot parse Dockerfile line: {line.strip()}")
        sources.extend(_clean(str(src)) for src in args[:-1])
    return sources


def _may_reinclude(patterns: list[_Pattern], rel_dir: str) -> bool:
    """Could a "!" pattern bring back something under this excluded directory?"""
    for pattern in patterns:
        if not pattern.exclusion:
            continue
        text = _clean(pattern.text[1:])
        if _GLOB.search(text) or text.startswith(rel_dir + "/"):
            return True
    return False


def copied_files(root: Path, dockerfile: str, ignore_text: str) -> list[str]:
    """Relative paths of every context file the Dockerfile's COPY/ADD lines take."""
    patterns = parse_ignore(ignore_text)
    sources = [_Pattern(_compile(src), False, src) for src in copy_sources(dockerfile)]
    tops = sorted({src.text.split("/")[0] for src in sources})
    if any(_GLOB.search(top) or top in ("", ".", "..") for top in tops):
        raise ImageBuildError(f"unsupported COPY sources (a glob or the whole context): {tops}")
    found: list[str] = []
    for top in tops:
        start = root / top
        if start.is_file():
            rel_files = [top]
        else:
            rel_files = []
            for dirpath, dirnames, filenames in os.walk(start):
                rel_dir = Path(dirpath).relative_to(root).as_posix()
                dirnames[:] = sorted(
                    d
                    for d in dirnames
                    if not ignored(patterns, f"{rel_dir}/{d}")
                    or _may_reinclude(patterns, f"{rel_dir}/{d}")
                )
                rel_files.extend(f"{rel_dir}/{name}" for name in filenames)
        found.extend(
            rel
            for rel in rel_files
            if not ignored(patterns, rel) and any(src.matches(rel) for src in sources)
        )
    return sorted(set(found))


def stage(root: Path, files: list[str], dest: Path) -> None:
    """Copy ``files`` (relative to ``root``) into ``dest``, modes kept; dest starts empty."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
