"""The comparison table on a tiny model: every row present, pruning bookkeeping carried through,
and command-line errors that leave nothing behind."""
import pytest
import torch

from conftest import tiny_model
from golden.policy import activation_groups, choose_plan
from golden.prune import PrunePlan
from golden.qmodel import QuantConfig, quantize_model
from golden.table import gap_closed, main, run_table, write_report


def test_every_configuration_is_scored(tmp_path):
    model = tiny_model("llama")
    groups = activation_groups(quantize_model(tiny_model("llama"), QuantConfig("p", 4, 8, 32)))
    plan = choose_plan(groups, {g.name: float(i) for i, g in enumerate(groups)}, 0.5, tokens=16)
    ids = torch.randint(0, 128, (400,), generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = run_table(model, ids, eval_tokens=64, seq_len=16, gptq_windows=2, smooth_windows=2,
                     plan=plan, prune=PrunePlan((0,), 0.5), group_size=32, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())     # float model untouched
    by = {r.config: r for r in rows}
    assert len(rows) == 14 and all(r.ppl > 1 for r in rows)
    assert by["FP32"].fp32_same_positions == pytest.approx(by["FP32"].ppl)
    assert by["FP32"].predicted == 4 * 15 and by["FP32"].token_share == 1.0
    pruned = by["W4A4/A8 plan + pruning"]
    assert pruned.predicted < by["FP32"].predicted and pruned.token_share == pytest.approx(0.75)
    assert by["W4A4 GPTQ (naive)"].a4_mac_share == 1.0 and by["W4A8 GPTQ"].a4_mac_share == 0.0
    assert 0.5 <= by["W4A4/A8 plan (50% A4 MACs)"].a4_mac_share < 1.0
    assert set(gap_closed(rows)) == {"W4A4/A8 plan (50% A4 MACs)", "W4A4/A8 plan + pruning"}
    files = write_report(rows, tmp_path, {"title": "tiny"})
    assert all(f.stat().st_size > 0 for f in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["perplexity.png", "table.json", "table.md"]


@pytest.mark.parametrize("argv, message", [
    (["--model", "/nonexistent/model"], "does not exist"),
    (["--keep-ratio", "0"], "keep_ratio"),
    (["--prune-layers", "a,b"], "--prune-layers"),
    (["--text", "/nonexistent.txt"], "does not exist"),
    (["--plan", "/nonexistent/plan.json"], "cannot read bit plan"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
