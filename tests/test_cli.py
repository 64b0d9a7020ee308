"""`python -m golden.eval` and `python -m golden.policy`: bad input gives one line and exit 2,
before any model is loaded where the input alone shows the problem."""
import pytest

from golden import eval as golden_eval
from golden import policy


@pytest.mark.parametrize("argv, message", [
    (["--model", "/nonexistent/model"], "does not exist"),
    (["--text", "/nonexistent.txt"], "does not exist"),
    (["--group-size", "abc"], "--group-size"),
    (["--weights", "gptq"], "needs --w-bits"),
    (["--prune-layers", "x"], "--prune-layers"),
    (["--prune-layers", "3", "--keep-ratio", "2"], "keep_ratio"),
    (["--plan", "/nonexistent/plan.json"], "cannot read bit plan"),
])
def test_eval_bad_input(capsys, argv, message):
    assert golden_eval.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--budget", "1.5"], "--budget"),
    (["--calib-windows", "0"], "--calib-windows"),
    (["--model", "/nonexistent/model"], "does not exist"),
])
def test_policy_bad_input_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "plans" / "plan.json"
    assert policy.main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.parent.exists()


def test_bits_outside_4_and_8_are_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as exc:
        golden_eval.main(["--w-bits", "3"])
    assert exc.value.code == 2 and "invalid choice: 3" in capsys.readouterr().err
