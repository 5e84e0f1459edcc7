"""Build the Lambda deployment package: a reproducible zip of the `pipeline` package.

Terraform references it by `filename` and `filebase64sha256`; identical sources give an
identical zip (fixed timestamps, sorted entries), so the hash only changes with the code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from harness.paths import REPO_ROOT

_FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def build_lambda_package(dest: Path, source: Path = REPO_ROOT / "pipeline") -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(
        p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(source.parent)), date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    if dest.exists() and dest.read_bytes() == tmp.read_bytes():
        tmp.unlink()
    else:
        tmp.replace(dest)
    return dest
