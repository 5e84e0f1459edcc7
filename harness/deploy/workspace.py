"""The directory Terraform runs in: the user's root, seen through the run directory.

Terraform reads override files (`*_override.tf`) only from the root module's own directory,
and writes its lock file there. The harness must add an override and must never write into
the user's root, so it runs Terraform in a mirror: a directory in the run directory whose
entries are symbolic links to the root's files, next to the generated override. The
directories between the project directory and the root are mirrored the same way, so
relative paths in the configuration (`../modules/x`, `${path.module}/../../build/f.zip`)
resolve exactly as they do in the real tree. Nothing is copied but the lock file.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

#: What Terraform itself keeps in a root: never mirrored (the harness keeps its own).
PRIVATE = {".terraform", "terraform.tfstate", "terraform.tfstate.backup", ".terraform.tfstate.lock.info"}
LOCK_FILE = ".terraform.lock.hcl"


@dataclass(frozen=True)
class Workspace:
    """The mirror of `root` (inside `anchor`) under `work_dir`."""

    root: Path
    anchor: Path
    work_dir: Path

    @classmethod
    def for_root(cls, root: Path, project_dir: Path, work_dir: Path) -> Workspace:
        root, project_dir = root.resolve(), project_dir.resolve()
        anchor = project_dir if root.is_relative_to(project_dir) else root.parent
        return cls(root, anchor, work_dir)

    @property
    def directory(self) -> Path:
        """Where Terraform runs (`-chdir`): the mirrored root."""
        return self.work_dir / "tree" / self.root.relative_to(self.anchor)

    def prepare(self) -> Path:
        """Build (or refresh) the mirror; returns the directory Terraform runs in."""
        tree = self.work_dir / "tree"
        if tree.exists():
            shutil.rmtree(tree)
        parts = self.root.relative_to(self.anchor).parts
        real, mirror = self.anchor, tree
        for part in parts:
            self._link_siblings(real, mirror, keep=part)
            real, mirror = real / part, mirror / part
        self._link_siblings(real, mirror, keep=None)
        lock = self.root / LOCK_FILE
        if lock.is_file():
            shutil.copyfile(lock, mirror / LOCK_FILE)
        return mirror

    @staticmethod
    def _link_siblings(real: Path, mirror: Path, keep: str | None) -> None:
        mirror.mkdir(parents=True, exist_ok=True)
        for entry in real.iterdir():
            if entry.name == keep or (keep is None and (entry.name in PRIVATE or entry.name == LOCK_FILE)):
                continue
            (mirror / entry.name).symlink_to(entry)

    def real_path(self, text: str) -> str:
        """`text` with mirror paths turned back into the user's (for messages)."""
        return text.replace(str(self.work_dir / "tree"), str(self.anchor))
