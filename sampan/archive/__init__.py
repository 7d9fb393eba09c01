"""Layer tars: safe extraction (with whiteout conversion and diff ID) and creation.

`extract_layer(src, dest, tee=None, whiteouts="overlay")` -> ExtractResult(diff_id, ...);
`write_layer_tar(dir, fileobj)`; `open_decompressed(f)` sniffs gzip/zstd/xz/bzip2.
"""

from .compression import HashingReader, detect, open_decompressed
from .create import write_layer_tar
from .extract import ExtractResult, clean_name, extract_layer

__all__ = ["ExtractResult", "HashingReader", "clean_name", "detect", "extract_layer",
           "open_decompressed", "write_layer_tar"]
