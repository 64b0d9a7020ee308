"""The CPU fallback: exact int4-weight kernels (C++ torch extension) for machines without an FPGA."""
from .kernels import (PATHS, available_paths, best_path, group_sums, last_loop, pack_weights, quantize_rows,
                      requantized_matmul, scaled_matmul, tile_weights, weight_bits)

__all__ = ["PATHS", "available_paths", "best_path", "group_sums", "last_loop", "pack_weights", "quantize_rows",
           "requantized_matmul", "scaled_matmul", "tile_weights", "weight_bits"]
