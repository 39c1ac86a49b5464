"""Build the installable connector: a self-contained folder (and optionally a .tar.gz of it) that a hospital's IT
department copies to the DMZ server.

    python -m connector.build dist/hersys-connector [--archive]

    dist/hersys-connector/
      hersys-connector, hersys-connector.cmd   the command (POSIX / Windows), runs `python -m connector`
      lib/connector, lib/mapping, lib/vocabulary   the code (plain Python, no Django)
      requirements.txt                          pinned third-party packages: `pip install -r requirements.txt`
      connector.example.toml                    the configuration to copy and fill in
      VERSION                                   content hash of lib/ (what the data centre's support asks for)
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import stat
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("connector", "mapping", "vocabulary")
HERE = Path(__file__).resolve().parent

POSIX = """#!/bin/sh
# HER-SYS登録補助 病院コネクタ
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHONPATH="$HERE/lib${PYTHONPATH:+:$PYTHONPATH}" exec "${HERSYS_CONNECTOR_PYTHON:-python3}" -m connector "$@"
"""
WINDOWS = """@echo off\r
rem HER-SYS登録補助 病院コネクタ\r
set "PYTHONPATH=%~dp0lib;%PYTHONPATH%"\r
if "%HERSYS_CONNECTOR_PYTHON%"=="" (set "HERSYS_CONNECTOR_PYTHON=py -3")\r
%HERSYS_CONNECTOR_PYTHON% -m connector %*\r
"""


def _ignore(directory, names):
    return [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo")) or n.startswith(".")]


def build(out: Path, archive: bool = False) -> Path:
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "lib").mkdir(parents=True)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, out / "lib" / package, ignore=_ignore)
    digest = hashlib.sha256()
    for path in sorted((out / "lib").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(out)).encode() + b"\0" + path.read_bytes())
    (out / "VERSION").write_text(digest.hexdigest()[:12] + "\n")
    launcher = out / "hersys-connector"
    launcher.write_text(POSIX)
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (out / "hersys-connector.cmd").write_bytes(WINDOWS.encode("utf-8"))
    shutil.copy(HERE / "requirements.txt", out / "requirements.txt")
    shutil.copy(HERE / "connector.example.toml", out / "connector.example.toml")
    if archive:
        target = out.parent / f"{out.name}-{(out / 'VERSION').read_text().strip()}.tar.gz"
        with tarfile.open(target, "w:gz") as tar:
            tar.add(out, arcname=out.name)
        return target
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m connector.build", description="病院コネクタの配布物を作成します。")
    p.add_argument("out", help="出力先フォルダ")
    p.add_argument("--archive", action="store_true", help=".tar.gz も作る")
    args = p.parse_args(argv)
    print(build(Path(args.out), args.archive))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
