"""The golden model: the project's single source of arithmetic truth."""
from .intref import (check_int, dot_int, group_accumulators, int_range, matmul_int, mul_int, nibble_join, nibble_split,
                     pack_int4, simd_mul4, simd_mul4_range, unpack_int4)
from .requant import RequantParams, group_scaled, output_scale, requant_bits, requant_params, requantize
from .trip import trip_acc_bits, trip_acc_range, trip_beats, trip_group_accumulators

__all__ = ["check_int", "dot_int", "group_accumulators", "int_range", "matmul_int", "mul_int", "nibble_join", "nibble_split",
           "pack_int4", "simd_mul4", "simd_mul4_range", "unpack_int4",
           "RequantParams", "group_scaled", "output_scale", "requant_bits", "requant_params", "requantize",
           "trip_acc_bits", "trip_acc_range", "trip_beats", "trip_group_accumulators"]
