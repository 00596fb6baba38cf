"""Hatch build hook: compile the OTLP wire decoder (watchkeep.ingest._otlp_wire, ADR 0031).

The extension is optional: ``otlp_proto.decode_protobuf`` uses upb when it is absent. So
the hook compiles it when Cython, setuptools and a C compiler are there and otherwise
warns and leaves a pure-Python package. The module is built in place, next to its .pyx
(what an editable install imports); a regular wheel also gets it as a forced inclusion.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MODULE = "watchkeep.ingest._otlp_wire"
SOURCE = "src/watchkeep/ingest/_otlp_wire.pyx"


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def compile_in_place(root: Path) -> Path:
    """Cythonize and compile the extension into src/; the path of the built module."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    with _cwd(root), tempfile.TemporaryDirectory() as temp:
        extensions = cythonize([Extension(MODULE, [SOURCE])], language_level=3, quiet=True, build_dir=None)
        dist = Distribution({"ext_modules": extensions, "package_dir": {"": "src"}})
        command = build_ext(dist)
        command.inplace = True
        command.build_temp = command.build_lib = temp
        command.ensure_finalized()
        command.run()
        return root / command.get_ext_fullpath(MODULE)


class CompileWireDecoder(BuildHookInterface):
    """Builds the extension for wheels and editable installs, or warns and skips."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        try:
            built = compile_in_place(root)
        except Exception as exc:  # no Cython, no compiler, a failed compile: stay pure Python
            self.app.display_warning(
                f"watchkeep: {MODULE} not compiled ({type(exc).__name__}: {exc}); "
                "OTLP protobuf decoding will use upb only"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":
            build_data["force_include"][str(built)] = str(built.relative_to(root / "src"))
