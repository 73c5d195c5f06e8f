"""The model store: compiled models kept on disk by name, loaded without recompiling.

    $TIMBER_HOME/models/NAME.timber     one artifact per model (`timber/artifact.py`)

`TIMBER_HOME` defaults to `~/.timber`.  Every write goes to a temporary file in the same
directory and is renamed over the entry (atomic on POSIX and Windows), so a reader sees the old
entry or the new one, never half of one, and two `timber load` of the same name at once leave
one complete entry (the last rename wins).  An entry that fails its checks (damaged, truncated,
foreign, too new) is reported by name with what to do about it, and never loaded.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ir.diagnostics import TimberError

SUFFIX = ".timber"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def default_home() -> Path:
    env = os.environ.get("TIMBER_HOME")
    return Path(env).expanduser() if env else Path.home() / ".timber"


def check_name(name: str) -> str:
    """A model name: letters, digits, `.`, `_`, `-`, starting with a letter or digit (it is a file name)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name.endswith(SUFFIX):
        raise TimberError(f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def name_from_path(path: str | Path) -> str:
    """The default store name of a model file: its stem, with other characters turned into '-'."""
    stem = Path(path).name.split(".")[0] or "model"
    name = re.sub(r"[^A-Za-z0-9._-]", "-", stem).lstrip(".-_") or "model"
    return name[:128]


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class StoreError(TimberError):
    """A store entry that cannot be used, or a name that is not in the store."""


@dataclass
class Entry:
    """One file in the store: its name, and either its summary or what is wrong with it."""

    name: str
    path: Path
    summary: dict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Store:
    """Compiled models by name under `home` (default: `$TIMBER_HOME`, else `~/.timber`)."""

    def __init__(self, home: str | Path | None = None):
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.models = self.home / "models"

    def path(self, name: str) -> Path:
        return self.models / (check_name(name) + SUFFIX)

    def names(self) -> list[str]:
        """Names of the entries (good or damaged), sorted."""
        if not self.models.is_dir():
            return []
        return sorted(p.name[: -len(SUFFIX)] for p in self.models.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))

    def entries(self) -> list[Entry]:
        """Every file in the store, each checked: entries and foreign files (not `NAME.timber`)."""
        if not self.models.is_dir():
            return []
        out = []
        for p in sorted(self.models.iterdir()):
            if p.name.startswith("."):
                continue  # a write in progress (or an abandoned one): never an entry
            if not p.name.endswith(SUFFIX) or not NAME_RE.fullmatch(p.name[: -len(SUFFIX)]):
                out.append(Entry(p.name, p, error=f"foreign file in the store: not a Timber entry; {_remedy_foreign(p)}"))
                continue
            name = p.name[: -len(SUFFIX)]
            try:
                out.append(Entry(name, p, summary=self.read(name).summary()))
            except StoreError as e:
                out.append(Entry(name, p, error=e.diagnostic.message))
        return out

    def read(self, name: str):
        """The checked `Artifact` of entry `name` (`StoreError` if missing or damaged)."""
        from timber.artifact import ArtifactError, read_artifact

        p = self.path(name)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"no model named '{name}' in the store ({self.models})", notes=self._known(name)) from None
        except OSError as e:
            raise StoreError(f"model '{name}': cannot read {p}: {e.strerror}") from None
        try:
            return read_artifact(data, what=f"model '{name}'")
        except ArtifactError as e:
            raise StoreError(f"{e.diagnostic.message}; {_remedy(name)}") from None

    def load(self, name: str, **kw):
        """Entry `name` as a `CompiledModel` (object code loaded, or recompiled if this CPU differs)."""
        from timber.artifact import ArtifactError, from_artifact

        art = self.read(name)
        try:
            return from_artifact(art, what=f"model '{name}'", **kw)
        except ArtifactError as e:
            raise StoreError(f"{e.diagnostic.message}; {_remedy(name)}") from None

    def add(self, name: str, data: bytes) -> Path:
        """Store artifact bytes under `name` (replacing an entry of that name atomically)."""
        p = self.path(name)
        atomic_write(p, data)
        return p

    def remove(self, name: str) -> None:
        p = self.path(name)
        try:
            p.unlink()
        except FileNotFoundError:
            raise StoreError(f"no model named '{name}' in the store ({self.models})", notes=self._known(name)) from None

    def stamp(self, name: str):
        """What changes when entry `name` is replaced or removed (None: no entry)."""
        try:
            st = os.stat(self.path(name))
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _known(self, name: str) -> list[str]:
        names = self.names()
        if not names:
            return ["the store is empty: add a model with `timber load MODEL --name NAME`"]
        return ["models in the store: " + ", ".join(names)]


def _remedy(name: str) -> str:
    return f"remove it with `timber remove {name}` and load the model again with `timber load MODEL --name {name}`"


def _remedy_foreign(p: Path) -> str:
    return f"move it out of {p.parent} (models are added with `timber load MODEL --name NAME`)"


__all__ = ["Entry", "Store", "StoreError", "atomic_write", "check_name", "default_home", "name_from_path"]
