"""Which landing files are complete and not yet handed to a run: the landing sensor's logic.

A file is *ready* when it matches a contract's glob (any case: ``.CSV`` too), is not a hidden or temporary
name, and either

- its size and modification time were the same at an earlier evaluation at least
  ``settle_seconds`` ago (the sensor's own clock measures the quiet time, so a
  writer on a host with another clock cannot fool it), or
- a ``_SUCCESS`` marker in its folder is not older than the file (the sender says
  the delivery is complete; "not older" because a file and a marker written in the
  same instant can share a timestamp on coarse-grained file systems).

A run is requested only when no new file is still being written, so a delivery is
ingested as a whole (order lines arrive together with their order headers, whose
keys ingestion checks on arrival).

The cursor remembers a 12-hex-digit fingerprint of path, size and mtime for every
file already handed to a run (so each file triggers once, and a re-delivered file
with new content triggers again), and the first sighting of every file still
settling. Fingerprints of files no longer in the landing folder are dropped, which
keeps the cursor as small as the folder. Everything here is a pure function of the
scan, the cursor and ``now``; nothing sleeps.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

from crm_warehouse.contracts import CONTRACTS

SUCCESS_MARKER = "_SUCCESS"
TEMPORARY_SUFFIXES = (".tmp", ".part")
CONTRACT_GLOBS: tuple[str, ...] = tuple(dict.fromkeys(c.file_glob for c in CONTRACTS))
CURSOR_VERSION = 1
# Paths listed in a skip message; the rest are counted.
MESSAGE_PATHS = 5


def is_temporary(name: str) -> bool:
    """True for names a writer uses while a file is incomplete (``.x``, ``x.tmp``, ``x.part``)."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


@dataclass(frozen=True)
class LandingFile:
    """One landing file as seen by a scan; ``path`` is relative to the landing root."""

    path: str
    size: int
    mtime_ns: int

    @property
    def folder(self) -> str:
        return str(PurePosixPath(self.path).parent)

    @cached_property
    def fingerprint(self) -> str:
        """Identity of this version of the file: path, size and mtime, hashed to 48 bits."""
        text = f"{self.path}\0{self.size}\0{self.mtime_ns}"
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


@dataclass(frozen=True)
class LandingScan:
    """Contract files under the landing root and the mtime of each folder's ``_SUCCESS``."""

    files: tuple[LandingFile, ...]
    markers: Mapping[str, int] = field(default_factory=dict)


def scan_landing(landing_dir: Path, globs: Sequence[str] = CONTRACT_GLOBS) -> LandingScan:
    """List the files matching ``globs`` (``<folder>/<name pattern>``) under ``landing_dir``.

    Each folder is read once (one ``scandir`` for all its patterns), which keeps a
    sensor tick over years of daily files well under a second.

    Raises
    ------
    FileNotFoundError
        When ``landing_dir`` is not a folder.
    """
    landing_dir = Path(landing_dir)
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist")
    patterns: dict[str, list[re.Pattern[str]]] = {}
    for glob in globs:
        pattern = PurePosixPath(glob)
        patterns.setdefault(str(pattern.parent), []).append(re.compile(fnmatch.translate(pattern.name), re.IGNORECASE))
    files: list[LandingFile] = []
    markers: dict[str, int] = {}
    for folder, names in patterns.items():
        try:
            with os.scandir(landing_dir / folder) as listing:
                entries = list(listing)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            wanted = entry.name == SUCCESS_MARKER or (
                not is_temporary(entry.name) and any(n.match(entry.name) for n in names)
            )
            try:
                if not wanted or not entry.is_file():
                    continue
                stat = entry.stat()
            except FileNotFoundError:
                continue  # renamed or removed between listing and stat
            if entry.name == SUCCESS_MARKER:
                markers[folder] = stat.st_mtime_ns
            else:
                files.append(LandingFile(f"{folder}/{entry.name}", stat.st_size, stat.st_mtime_ns))
    return LandingScan(files=tuple(sorted(files, key=lambda f: f.path)), markers=markers)


@dataclass(frozen=True)
class Sighting:
    """A file's size and mtime, and since when (sensor clock, epoch seconds) they have held."""

    size: int
    mtime_ns: int
    since: float

    def matches(self, file: LandingFile) -> bool:
        return (self.size, self.mtime_ns) == (file.size, file.mtime_ns)


@dataclass(frozen=True)
class LandingCursor:
    """What earlier evaluations saw: fingerprints already run, and files still settling."""

    triggered: frozenset[str] = frozenset()
    settling: Mapping[str, Sighting] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "done": sorted(self.triggered),
                "wait": {p: [s.size, s.mtime_ns, round(s.since, 3)] for p, s in sorted(self.settling.items())},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> LandingCursor:
        """Parse a cursor written by :meth:`to_json`; ``None`` or ``""`` is the empty cursor.

        Raises
        ------
        ValueError
            When ``text`` is not such a cursor (for example one typed into the UI).
        """
        if not text:
            return cls()
        try:
            data = json.loads(text)
            if data.get("v") != CURSOR_VERSION:
                raise ValueError(f"cursor version {data.get('v')!r}, expected {CURSOR_VERSION}")
            settling = {p: Sighting(int(s), int(m), float(t)) for p, (s, m, t) in data["wait"].items()}
            return cls(triggered=frozenset(map(str, data["done"])), settling=settling)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(
                f"not a landing-sensor cursor: {text[:80]!r} ({exc}); clear the cursor to start afresh"
            ) from exc


@dataclass(frozen=True)
class LandingDecision:
    """Outcome of one evaluation: the files to run now (if any) and the cursor to store."""

    ready: tuple[LandingFile, ...]
    waiting: tuple[LandingFile, ...]
    cursor: LandingCursor
    settle_seconds: int

    @property
    def to_run(self) -> tuple[LandingFile, ...]:
        """The ready files, when nothing new is still being written; else nothing."""
        return () if self.waiting else self.ready

    @property
    def run_key(self) -> str:
        """Same files (path, size, mtime) give the same key, so Dagster starts one run for them."""
        digest = hashlib.blake2b(digest_size=8)
        for fingerprint in sorted(f.fingerprint for f in self.to_run):
            digest.update(fingerprint.encode())
        return f"landing-{digest.hexdigest()}"

    def explain(self) -> str:
        """Why no run is requested, for the sensor's skip message."""
        if not self.ready and not self.waiting:
            return "no new landing files"
        held = f"; {len(self.ready)} ready file(s) wait for them" if self.ready else ""
        return (
            f"{len(self.waiting)} new file(s) still being written (ready after "
            f"{self.settle_seconds} s unchanged or a newer {SUCCESS_MARKER} marker in their folder): "
            f"{list_paths(self.waiting)}{held}"
        )


def list_paths(files: Sequence[LandingFile]) -> str:
    """The first few paths of ``files``, then how many more."""
    shown = ", ".join(f.path for f in files[:MESSAGE_PATHS])
    more = len(files) - MESSAGE_PATHS
    return shown + (f" and {more} more" if more > 0 else "")


def decide(scan: LandingScan, cursor: LandingCursor, now: float, settle_seconds: int) -> LandingDecision:
    """Classify the scan's files not yet run into ready and waiting, and advance the cursor.

    When every new file is ready, they are recorded as run in the returned cursor: the
    caller must request the run when ``decision.to_run`` is not empty. An empty scan
    leaves the cursor as it was, so a landing folder that is briefly empty (an
    unmounted share) does not make every file look new when it comes back.
    """
    if settle_seconds < 0:
        raise ValueError(f"settle_seconds={settle_seconds} must be 0 or more")
    if not scan.files:
        return LandingDecision((), (), cursor, settle_seconds)
    ready: list[LandingFile] = []
    waiting: list[LandingFile] = []
    settling: dict[str, Sighting] = {}
    for file in scan.files:
        if file.fingerprint in cursor.triggered:
            continue
        earlier = cursor.settling.get(file.path)
        unchanged = earlier is not None and earlier.matches(file)
        settling[file.path] = earlier if unchanged else Sighting(file.size, file.mtime_ns, now)
        settled = unchanged and now - earlier.since >= settle_seconds
        marker = scan.markers.get(file.folder)
        marked = marker is not None and marker >= file.mtime_ns
        (ready if marked or settled else waiting).append(file)
    present = {f.fingerprint for f in scan.files}
    triggered = cursor.triggered & present
    if ready and not waiting:
        triggered |= {f.fingerprint for f in ready}
        settling = {}
    return LandingDecision(
        ready=tuple(ready),
        waiting=tuple(waiting),
        cursor=LandingCursor(triggered=frozenset(triggered), settling=settling),
        settle_seconds=settle_seconds,
    )


def systems_of(files: Iterable[LandingFile]) -> list[str]:
    """Source-system folders of ``files`` (the first part of each path), sorted."""
    return sorted({PurePosixPath(f.path).parts[0] for f in files})
