"""Named numeric arrays in one file: ``.npy`` members in a zip (an ``.npz``), read without pickle.

:func:`write_arrays` gives the same bytes for the same arrays; :func:`read_arrays` reads each member's
header before its data, refuses object arrays and sizes a member does not hold, and turns any fault
of a damaged file into one :class:`~opm_nlp.exceptions.ModelError`.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from opm_nlp.exceptions import ModelError

#: An array file declaring more than this is refused before reading: a fine-tuned MiniLM model's
#: arrays take ~45 MB, so 2 GiB is room for far larger networks and stops a file that claims more.
MAX_ARRAY_BYTES = 2 * 1024**3


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write named numeric arrays as ``.npy`` files in a zip (an ``.npz`` that numpy reads without pickle).

    Members carry a fixed date, so the same arrays give the same bytes.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asarray(value), allow_pickle=False)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays :func:`write_arrays` wrote, read without pickle; a :class:`ModelError` for a damaged file."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if sum(info.file_size for info in infos) > MAX_ARRAY_BYTES:
                raise ModelError(f"{path}: declares more than {MAX_ARRAY_BYTES >> 30} GiB of arrays")
            arrays = {}
            for info in infos:
                name = info.filename.removesuffix(".npy")
                if name == info.filename or name in arrays:
                    raise ModelError(f"{path}: member '{info.filename}' is not a distinct .npy array")
                with archive.open(info) as handle:  # the header first: refuse before allocating
                    version = np.lib.format.read_magic(handle)
                    if version not in ((1, 0), (2, 0)):
                        raise ModelError(f"{path}: '{info.filename}' has .npy version {version}")
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(handle)
                if dtype.hasobject or math.prod(shape) * dtype.itemsize > info.file_size:
                    raise ModelError(f"{path}: '{info.filename}' is not a numeric array of the size it declares")
                with archive.open(info) as handle:
                    arrays[name] = np.lib.format.read_array(handle, allow_pickle=False)
            return arrays
    except ModelError:
        raise
    except Exception as exc:  # zip, zlib and .npy readers fail in many ways on a damaged file: one line each
        raise ModelError(f"{path}: not a readable array file ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:120]}).") from None
