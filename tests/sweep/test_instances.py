"""Several instances per candidate: merged histograms ranked, spread shown, the best instance kept."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from tickpath.clock import ManualClock
from tickpath.stats import LatencyRecorder
from tickpath.sweep.instances import merge_instances
from tickpath.sweep.orchestrator import Orchestrator
from tickpath.sweep.plan import candidates
from tickpath.sweep.results import summary, write_results
from tickpath.sweep.store import DirectoryStore, result_name, split_result_name

from .helpers import FakeProvisioner, ScriptedStore, local_config, ok_result, recorded_doc

S = 1_000_000_000


def _samples(centre_us: float, n: int = 200, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [centre_us * rng.uniform(0.9, 1.3) for _ in range(n)]


def _setup(tmp_path: Path, zones: list[str], **sweep: object) -> tuple[Orchestrator, FakeProvisioner, ScriptedStore]:
    cfg = local_config(tmp_path, zones, **{"instances_per_candidate": 3, "result_timeout_s": 100, **sweep})
    clock = ManualClock()
    store = ScriptedStore(clock)
    prov = FakeProvisioner(clock, store)
    return Orchestrator(cfg, "unit-i", prov, clock=clock, candidates=candidates(cfg)), prov, store


def test_merged_figures_equal_one_histogram_of_every_instances_samples() -> None:
    """Merging three instances' encoded histograms gives the percentiles of all their samples together."""
    per_instance = [_samples(c, seed=i) for i, c in enumerate((1000.0, 1500.0, 4000.0))]
    merged = merge_instances([recorded_doc(s) for s in per_instance])
    together = LatencyRecorder("all")
    together.record_many([round(v * 1000) for s in per_instance for v in s])
    want = together.summary().to_dict("us")
    for stat in ("min", "p50", "p90", "p99", "max"):
        assert merged.figures[f"ws.{stat}"] == pytest.approx(want[stat]), stat
    # the mean is the count-weighted mean of the instances' exact means
    exact = sum(v for s in per_instance for v in s) / sum(len(s) for s in per_instance)
    assert merged.figures["ws.mean"] == pytest.approx(exact, rel=1e-3)
    assert LatencyRecorder.decode(merged.histograms["ws"]).count == together.count


def test_merged_loss_ratio_counts_every_instances_losses() -> None:
    """Losses of all instances add up: 10 of 210 lost on one instance is 10 of 630 overall."""
    docs = [
        recorded_doc(_samples(1000.0), ws_losses=10),
        recorded_doc(_samples(1000.0)),
        recorded_doc(_samples(1000.0)),
    ]
    assert merge_instances(docs).figures["ws.loss_ratio"] == pytest.approx(10 / 610, rel=1e-4)


def test_a_method_without_histograms_takes_the_worst_instance_not_the_best() -> None:
    """An instance without an encoded histogram cannot be merged: the worst figure is used, with a note."""
    docs = [recorded_doc(_samples(1000.0)), recorded_doc(_samples(3000.0))]
    del docs[1]["methods"]["ws"]["histogram"]
    merged = merge_instances(docs)
    assert merged.figures["ws.p50"] == docs[1]["methods"]["ws"]["summary"]["p50"]
    assert "ws" not in merged.histograms and any("worst instance" in n for n in merged.notes)


def test_result_names_round_trip_and_the_directory_store_lists_instances(tmp_path: Path) -> None:
    """Instance 0 is the candidate's name, instance n '<candidate>/instance-n'; both are listed."""
    assert result_name("fast", 0) == "fast" and split_result_name(result_name("fast", 2)) == ("fast", 2)
    store = DirectoryStore(tmp_path)
    for name in ("fast", "fast/instance-1", "fast/instance-2", "slow"):
        store.put("sw-1", name, b"{}")
    (tmp_path / "results" / "sw-1" / "fast" / "notes.txt").write_text("not a result")
    assert store.ready("sw-1") == {"fast", "fast/instance-1", "fast/instance-2", "slow"}


async def test_candidate_ranked_on_merged_figures_and_keeps_its_best_instance(tmp_path: Path) -> None:
    """Zone a (instances at 3000/1000/1200 µs) beats b (1500 each) on the merged p50, although its
    instance 0 is the worst of all; a keeps instance 1, the others of a and all of b are destroyed."""
    orch, prov, store = _setup(tmp_path, ["a", "b"], metric="ws.p50")
    centres = {"a": (3000.0, 1000.0, 1200.0), "b": (1500.0, 1500.0, 1500.0)}
    docs = {(z, i): recorded_doc(_samples(c, seed=i)) for z, cs in centres.items() for i, c in enumerate(cs)}
    store.script = {result_name(z, i): ((1 + i) * S, ok_result(d)) for (z, i), d in docs.items()}
    out = await orch.run()
    a = orch.states["a"]
    assert out.winners == ["a"] and out.ranking == ["a", "b"]
    merged = merge_instances([docs["a", i] for i in range(3)])
    assert a.score == pytest.approx(merged.figures["ws.p50"])
    assert a.best_instance == 1
    assert prov.instances_destroyed == {"a": [0, 2]} and a.trimmed == [0, 2]
    assert "b" in prov.destroyed_at and prov.live == {"a"}
    p50s = [docs["a", i]["methods"]["ws"]["summary"]["p50"] for i in range(3)]
    assert a.spread["ws.p50"] == pytest.approx(max(p50s) - min(p50s))
    assert [i.figures["ws.p50"] for i in a.instances] == p50s
    assert "3 instances merged" in a.explain and "best instance 1" in a.explain
    doc = summary(orch.cfg, out)
    assert "best instance (1) is the one kept" in doc["why"]
    assert doc["ranking"][0]["best_instance"] == 1 and doc["ranking"][0]["spread_us"]["ws.p50"] > 0


async def test_a_failed_instance_is_left_out_and_a_candidate_fails_only_when_all_do(tmp_path: Path) -> None:
    """One failed instance: the candidate ranks on the others. Every instance failed: the candidate fails."""
    orch, prov, store = _setup(tmp_path, ["a", "b"])
    failed = json.dumps({"status": "failed", "error": "connection refused"}).encode()
    store.script = {
        "a": (1 * S, ok_result(recorded_doc(_samples(1000.0)))),
        "a/instance-1": (1 * S, failed),
        "a/instance-2": (2 * S, ok_result(recorded_doc(_samples(1100.0, seed=2)))),
        "b": (1 * S, failed),
        "b/instance-1": (1 * S, failed),
        "b/instance-2": (1 * S, ok_result(recorded_doc(_samples(500.0), ws_losses=100))),
    }
    out = await orch.run()
    a, b = orch.states["a"], orch.states["b"]
    assert out.winners == ["a"] and a.instances[1].status == "failed" and a.best_instance in (0, 2)
    usable = [i.result["probe"] for i in a.instances if i.result is not None and i.status == "reported"]
    assert len(usable) == 2 and a.score == pytest.approx(merge_instances(usable).figures["ws.p99"])
    assert "2 of 3 instances merged" in a.explain and "instance(s) 1 failed" in a.explain
    assert b.failed and "every instance failed" in (b.error or "") and "lost" in (b.error or "")
    assert prov.instances_destroyed == {"a": [i for i in range(3) if i != a.best_instance]}


async def test_silent_instances_time_out_and_the_rest_are_ranked(tmp_path: Path) -> None:
    """At the result timeout, a candidate with some instances in is ranked on them; silent ones are failed."""
    orch, _prov, store = _setup(tmp_path, ["a"], result_timeout_s=10)
    store.script = {"a": (1 * S, ok_result(recorded_doc(_samples(1000.0))))}
    out = await orch.run()
    a = orch.states["a"]
    assert out.winners == ["a"] and a.best_instance == 0
    assert [i.status for i in a.instances] == ["reported", "failed", "failed"]
    assert "no result within 10 s" in (a.instances[1].error or "")


async def test_results_show_the_spread_in_csv_markdown_and_json(tmp_path: Path) -> None:
    """results/: CSV spread columns, a per-instance table in summary.md, instances in summary.json."""
    orch, _prov, store = _setup(tmp_path, ["a", "b"], metric="ws.p50")
    store.script = {
        result_name(z, i): (1 * S, ok_result(recorded_doc(_samples(c * (1 + i), seed=i))))
        for z, c in (("a", 1000.0), ("b", 2000.0))
        for i in range(3)
    }
    out = await orch.run()
    d = write_results(orch.cfg, out, tmp_path / "results")
    rows = {r["candidate"]: r for r in csv.DictReader((d / "latency_results.csv").open())}
    a = orch.states["a"]
    assert rows["a"]["best_instance"] == "0" and rows["a"]["instances_reported"] == "3"
    assert float(rows["a"]["ws.p50_spread_us"]) == pytest.approx(a.spread["ws.p50"], abs=1e-3)
    md = (d / "summary.md").read_text()
    assert "## Instances (placement luck)" in md and "| a | 0 (best) |" in md and "| a | spread |" in md
    doc = json.loads((d / "summary.json").read_text())
    assert [i["index"] for i in doc["candidates"]["a"]["instances"]] == [0, 1, 2]
    assert doc["candidates"]["a"]["destroyed_instances"] == [1, 2]
    cand = json.loads((d / "candidates" / "a.json").read_text())
    assert [i["index"] for i in cand["instances"]] == [0, 1, 2]
    assert (d / "candidates" / "a.instance-2.methods.ws.hdr").exists()
    merged = LatencyRecorder.decode((d / "candidates" / "a.methods.ws.hdr").read_text().strip())
    assert merged.count == sum(
        LatencyRecorder.decode((d / "candidates" / f"a.instance-{i}.methods.ws.hdr").read_text().strip()).count
        for i in range(3)
    )
    assert (d / "candidates" / "a.methods.ws.hgrm").exists()


async def test_the_html_report_shows_each_instance_and_plots_the_merged_distribution(tmp_path: Path) -> None:
    """`tickpath report` on such a sweep lists every instance with its figures and the spread, and
    draws each candidate from its merged histogram (all 3 x 200 samples)."""
    from tickpath.report import build_report
    from tickpath.report.collect import collect
    from tickpath.report.sections import _candidate_spectra

    orch, _prov, store = _setup(tmp_path, ["a", "b"], metric="ws.p50")
    store.script = {
        result_name(z, i): (1 * S, ok_result(recorded_doc(_samples(c * (1 + i), seed=i))))
        for z, c in (("a", 1000.0), ("b", 2000.0))
        for i in range(3)
    }
    out = await orch.run()
    d = write_results(orch.cfg, out, tmp_path / "results")
    html = build_report(d).html_path.read_text()
    assert "Instances per candidate (placement luck" in html
    assert "0 (best, kept)" in html and html.count("spread (max - min)") == 2
    spectra = dict(_candidate_spectra(d, "ws", collect(d)))
    merged = LatencyRecorder.decode(orch.states["a"].merged_histograms["ws"])
    assert merged.count == 600 and spectra["a"][-1][1] == pytest.approx(merged.percentile(100.0) / 1e3)


@pytest.mark.parametrize(
    ("provider", "part", "count"),
    [("aws", "candidate", "var.instance_count"), ("local", "", "length(var.agent_specs)")],
)
def test_the_addresses_a_kept_candidate_destroys_exist_in_its_module(provider: str, part: str, count: str) -> None:
    """destroy_instances targets `<resource>[N]`: each module declares that resource with one instance
    per machine of the candidate, so those addresses name exactly one machine each."""
    import hcl2

    from tickpath.sweep.provision import INSTANCE_RESOURCE, module_dir

    rtype, name = INSTANCE_RESOURCE[provider].split(".")
    doc = hcl2.loads((module_dir(provider, part) / "main.tf").read_text())
    (body,) = [r[f'"{rtype}"'][f'"{name}"'] for r in doc["resource"] if f'"{name}"' in r.get(f'"{rtype}"', {})]
    assert str(body["count"]).strip("${}") == count
