"""mconv_flash: read mconv .flash files (docs/FORMAT.md, docs/READER.md).

Pure Python and numpy. See `mconv_flash.reader` for the reader and
`mconv_flash.mlx` for the optional MLX helpers (arrays as mx.array, an
mlx-lm model with pinned weights in memory and FFN / expert weights read per
token)."""
from ._xxh3 import xxh3_64
from .reader import (ALIGN, PAGE, ChecksumError, FlashError, FlashFile, LayerInfo, TensorInfo, aligned_buffer,
                     open)

__version__ = "1.0.0"
__all__ = ["open", "FlashFile", "FlashError", "ChecksumError", "TensorInfo", "LayerInfo", "aligned_buffer",
           "xxh3_64", "PAGE", "ALIGN", "__version__"]
