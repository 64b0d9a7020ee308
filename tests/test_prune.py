"""Token pruning on tiny random LLaMA, OPT and BLOOM models: what is kept, and that the pruned
network computes what a masked full network computes."""
import pytest
import torch

from conftest import tiny_model
from golden.eval import score
from golden.models import arch_of, blocks
from golden.prune import PruneError, PrunePlan, attention_importance, token_pruning

SEQ = 24


def _ids(seed=1):
    return torch.randint(0, 128, (1, SEQ), generator=torch.Generator().manual_seed(seed))


def test_keep_ratio_one_changes_nothing(family):
    model = tiny_model(family)
    ids = _ids()
    ref = model(ids, use_cache=False).logits
    with token_pruning(model, PrunePlan((0, 1), 1.0)) as trace:
        out = model(ids, use_cache=False).logits
    assert torch.allclose(out, ref, atol=1e-5)
    assert trace.kept.tolist() == list(range(SEQ)) and trace.tokens_in == [SEQ, SEQ]


def test_pruning_after_the_last_block_selects_positions_only(family):
    model = tiny_model(family)
    ids = _ids()
    ref = model(ids, use_cache=False).logits
    with token_pruning(model, PrunePlan((1,), 0.5)) as trace:
        out = model(ids, use_cache=False).logits
    assert trace.kept.numel() == SEQ // 2 == out.shape[1]
    assert torch.allclose(out[0], ref[0, trace.kept], atol=1e-5)


def _masked_reference(model, ids, layer, kept):
    """The same network without slicing: in blocks after ``layer``, pruned tokens are masked out as keys."""
    pruned = torch.ones(SEQ, dtype=torch.bool)
    pruned[kept] = False

    def hook(module, args, kwargs):
        mask = kwargs["attention_mask"]
        kwargs["attention_mask"] = torch.where(pruned, torch.finfo(mask.dtype).min, mask)
        return args, kwargs

    handles = [b.register_forward_pre_hook(hook, with_kwargs=True) for b in blocks(model)[layer + 1:]]
    try:
        return model(ids, use_cache=False).logits[0, kept]
    finally:
        for h in handles:
            h.remove()


def test_pruned_network_equals_masking_pruned_keys(family):
    """Slicing tokens out (with their positions, RoPE/ALiBi and causal mask) must equal keeping them
    but hiding them from every later attention: an independent way to compute the same thing."""
    model = tiny_model(family)
    model.config._attn_implementation = "eager"
    ids = _ids(3)
    with token_pruning(model, PrunePlan((0,), 0.6)) as trace:
        out = model(ids, use_cache=False).logits[0]
    assert trace.tokens_in == [SEQ, PrunePlan((0,), 0.6).kept_count(SEQ)]
    assert torch.allclose(out, _masked_reference(model, ids, 0, trace.kept), atol=1e-4)


def test_least_attended_tokens_are_dropped():
    model = tiny_model("llama")
    attn = blocks(model)[0].get_submodule(arch_of(model).attention)
    seen = {}
    attn.register_forward_hook(lambda m, a, out: seen.update(probs=out[1]))    # returns None: output kept
    with token_pruning(model, PrunePlan((0,), 0.5)) as trace:
        model(_ids(), use_cache=False)
    importance = attention_importance(seen["probs"])
    expected = torch.topk(importance, SEQ // 2).indices.sort().values
    assert trace.kept.tolist() == expected.tolist()
    dropped = [i for i in range(SEQ) if i not in trace.kept.tolist()]
    assert importance[trace.kept].min() >= importance[dropped].max()


def test_importance_divides_by_the_queries_that_see_a_token():
    # Uniform causal attention: query q spreads 1/(q+1) over keys 0..q.
    s = 4
    probs = torch.tril(torch.ones(s, s)) / torch.arange(1, s + 1).unsqueeze(1)
    imp = attention_importance(probs.view(1, 1, s, s))
    expected = [sum(1 / (q + 1) for q in range(k, s)) / (s - k) for k in range(s)]
    assert torch.allclose(imp, torch.tensor(expected))


def test_perplexity_bookkeeping_scores_kept_positions_only():
    model = tiny_model("opt")
    ids = torch.randint(0, 128, (50,), generator=torch.Generator().manual_seed(0))
    full = score(model, ids, seq_len=20, progress=False)
    plan = PrunePlan((0,), 0.5)
    pruned = score(model, ids, seq_len=20, prune=plan, progress=False)
    # Windows of 20, 20, 10 tokens predict 19, 19, 9; pruning keeps 10, 10, 5 positions, of which the
    # last position of a window has nothing to predict when it is kept.
    assert full.predicted == 47
    assert pruned.predicted == int((~torch.isnan(pruned.nll)).sum()) <= 25
    assert pruned.predicted >= 22
    same = full.ppl_on(pruned)
    assert same > 0 and torch.isfinite(torch.tensor(same))
    assert pruned.token_share < 0.8     # block 1 saw half the tokens


def test_bad_plans_say_what_is_wrong():
    with pytest.raises(PruneError, match="keep_ratio"):
        PrunePlan((0,), 0.0)
    with pytest.raises(PruneError, match="keep_ratio"):
        PrunePlan((0,), 1.5)
    model = tiny_model("llama")
    with pytest.raises(PruneError, match="has 2 blocks"):
        with token_pruning(model, PrunePlan((5,), 0.5)):
            pass
    with pytest.raises(PruneError, match="one sequence"):
        with token_pruning(model, PrunePlan((0,), 0.5)):
            model(torch.zeros(2, 8, dtype=torch.long), use_cache=False)
