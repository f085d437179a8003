"""The soak benchmark drives many runs through one process on one set of backends."""

from __future__ import annotations

from contextgen.benchmarks import soak


def test_soak_runs_share_one_set_of_backends_and_keep_every_image() -> None:
    result = soak.run(runs=8, warm_up=4)
    assert result["backends_built"] == 1
    assert result["runs_without_image"] == 0
    assert result["images_written"] == result["runs"]
    assert [r["run"] for r in result["readings"]] == [4, 8]
    assert any("growth after warm-up" in line for line in soak.describe(result))
