"""benchmarks/bench.py judges each shape against the speed issue's targets, so a run's table
says itself which it met and why not (no timing is asserted here: only the judging)."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("lstm_c_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shape_result(ratio=0.7, pct=60.0, trace=1.0, f64=2.0, f64_valued=2.0, step_us=None, name="seq"):
    r = {"shape": name, "B": 1, "T": 100, "D": 64, "H": 128, "best": "onnxruntime",
         "engines": {"lstm_c": {"ms": 0.2, "pct_sgemm": pct}}, "ratio_vs_best": ratio, "trace_ratio": trace, "f64_ratio": f64, "f64_valued_ratio": f64_valued,
         "foreign_cpu_pct": 0.1, "notes": []}
    if ratio is None:
        del r["best"], r["ratio_vs_best"]
    if step_us is not None:
        r["stateful_step_us"] = step_us
    return r


@pytest.mark.parametrize("kwargs, missed", [
    ({}, []),
    ({"ratio": 0.8}, []),
    ({"ratio": 0.93, "pct": 90.0}, []),                         # near the roof and the fastest
    ({"ratio": 0.93, "pct": 89.5}, ["speed 0.93 at 90% sgemm"]),
    ({"ratio": 1.02, "pct": 104.0}, ["speed 1.02 at 104% sgemm"]),  # at the roof, but not the fastest
    ({"ratio": None}, ["no competitor"]),
    ({"step_us": 5.0}, []),
    ({"step_us": 5.86}, ["step 5.9 µs"]),
    ({"trace": 1.26}, ["trace 1.26"]),
    ({"f64": 2.35, "f64_valued": 2.29}, ["float64 2.35", "float64-valued 2.29"]),
    ({"ratio": 0.86, "f64_valued": 2.21}, ["speed 0.86 at 60% sgemm", "float64-valued 2.21"]),
])
def test_each_target_is_judged_with_its_limit(bench, kwargs, missed):
    assert bench.targets_missed(shape_result(**kwargs)) == missed


def test_the_summary_table_says_which_shapes_met_the_targets(bench, capsys):
    results = [shape_result(name="seq"), shape_result(name="deepbench_device", ratio=0.88, pct=58.0),
               shape_result(name="stream", step_us=3.8)]
    for r in results:
        r["targets_missed"] = bench.targets_missed(r)
    meta = {"threads": 2, "date": "2026-12-07", "cpu": "test CPU", "cores": 2, "sgemm_gflops": 200.0,
            "blas_threads": None, "versions": {"lstm_c": "0"}, "command": "bench.py"}
    bench.report(meta, results, ["lstm_c"], markdown=True)
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert rows["seq"].rstrip(" |").endswith("met")
    assert rows["deepbench_device"].rstrip(" |").endswith("speed 0.88 at 58% sgemm")
    assert "met on 2 of 3 shapes" in out
