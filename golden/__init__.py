"""The golden model: the project's single source of arithmetic truth."""
from .intref import (check_int, dot_int, group_accumulators, int_range, matmul_int, mul_int, nibble_join, nibble_split,
                     pack_int4, simd_mul4, simd_mul4_range, unpack_int4)

__all__ = ["check_int", "dot_int", "group_accumulators", "int_range", "matmul_int", "mul_int", "nibble_join", "nibble_split",
           "pack_int4", "simd_mul4", "simd_mul4_range", "unpack_int4"]
