"""The weight arena: exact copies, aligned, in huge pages where the kernel gives them."""
import numpy as np
import pytest
import torch

import cpu
from cpu.arena import HUGE_PAGE, WeightArena, huge_page_bytes, huge_page_summary, huge_pages_mode
from cpu.arena import _holding, _mappings
from cpu.model import CpuLinear


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.float32, torch.int64])
@pytest.mark.parametrize("shape", [(0,), (1,), (3, 5), (384, 96, 32), (7, 0, 2)])
def test_place_copies_values_shape_and_dtype_on_cache_lines(dtype, shape):
    arena = WeightArena(chunk_bytes=1 << 20)
    filler = arena.place(torch.ones(13, dtype=torch.uint8))     # so the next one does not start the mapping
    source = (torch.arange(int(np.prod(shape))) % 251 - 100).to(dtype).reshape(shape)
    placed = arena.place(source)
    assert placed.dtype == dtype and placed.shape == source.shape and placed.is_contiguous()
    assert torch.equal(placed, source)
    if placed.numel():
        assert placed.data_ptr() % 64 == 0
        end = placed.data_ptr() + placed.numel() * placed.element_size()
        assert placed.data_ptr() >= filler.data_ptr() + 13 or end <= filler.data_ptr()     # not over it
    assert torch.equal(filler, torch.ones(13, dtype=torch.uint8))
    source.zero_()                                              # a copy, not a view of the source
    assert placed.numel() == 0 or not torch.equal(placed, source)


def test_mappings_start_on_huge_pages_and_a_big_request_gets_its_own():
    arena = WeightArena(chunk_bytes=3 << 20)
    assert arena.chunk_bytes == 2 * HUGE_PAGE                   # rounded up to whole huge pages
    first = arena.empty((1000,), torch.uint8)
    assert first.data_ptr() % HUGE_PAGE == 0
    big = arena.empty((5 << 20,), torch.uint8)                  # larger than a chunk
    assert big.data_ptr() % HUGE_PAGE == 0
    big.fill_(3)
    first.fill_(1)
    assert int(big.sum()) == 3 * (5 << 20) and int(first.sum()) == 1000


def test_bad_requests_say_what_is_wrong():
    with pytest.raises(ValueError, match="chunk_bytes"):
        WeightArena(chunk_bytes=0)
    with pytest.raises(TypeError, match="CPU tensors"):
        WeightArena().place(np.zeros(3))


def test_weights_sit_in_huge_pages_where_the_kernel_allows_them():
    """What a layer gets follows the machine's setting: huge pages under "always" or "madvise", none
    under "never" (and the values are the same either way)."""
    arena = WeightArena(chunk_bytes=8 << 20)
    placed = arena.place(torch.full((6 << 20,), 5, dtype=torch.uint8))      # touches three huge pages
    mode = huge_pages_mode()
    if mode in ("always", "madvise"):
        assert arena.advised
        assert huge_page_bytes(placed) >= HUGE_PAGE, (mode, huge_page_bytes(placed))
    else:
        assert huge_page_bytes(placed) == 0, mode
    assert int(placed[-1]) == 5


def test_a_layer_keeps_its_weights_and_scales_in_the_arena():
    rng = np.random.default_rng(3)
    n, k = 1024, 4096                                        # 2 MiB of int4 weights
    packed = cpu.pack_weights(rng.integers(-8, 8, (n, k)))
    layer = CpuLinear("big", packed, torch.rand(n, k // 128), None, 8, 128)
    if huge_pages_mode() in ("always", "madvise"):
        assert huge_page_bytes(layer.packed) >= HUGE_PAGE
    # the arena shares one mapping among layers: the buffers are views of a larger storage
    assert layer.packed.untyped_storage().nbytes() > layer.packed.numel()
    assert layer.w_scale.untyped_storage().data_ptr() == layer.packed.untyped_storage().data_ptr()


def test_summary_counts_each_mapping_once():
    arena = WeightArena(chunk_bytes=8 << 20)
    parts = [arena.place(torch.full((3 << 20,), i, dtype=torch.uint8)) for i in range(2)]   # one mapping
    total, huge = huge_page_summary(parts)
    assert total == 6 << 20
    assert huge == huge_page_bytes(parts[0]) == huge_page_bytes(parts[1])
    if huge_pages_mode() in ("always", "madvise"):
        # Bounded by the mapping as smaps lists it, not by the arena's chunk: Linux merges an arena mapping
        # with a neighbouring one of the same flags (another test's arena), and counts the two as one.
        start, end, _ = _holding(parts[0].data_ptr(), _mappings())
        assert HUGE_PAGE <= huge <= end - start
    assert huge_page_summary([]) == (0, 0)
