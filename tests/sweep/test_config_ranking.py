"""Sweep TOML validation, metric parsing, figure extraction and the 'cannot win any more' rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickpath.errors import ConfigError
from tickpath.sweep.config import load_config, parse_config
from tickpath.sweep.plan import candidates, check_cost, describe, expected_cost, probe_argv
from tickpath.sweep.ranking import doomed, extract_figures, parse_metric, rank

from .helpers import probe_doc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _aws(**over: object) -> dict[str, object]:
    sweep = {
        "name": "tokyo",
        "provider": "aws",
        "region": "ap-northeast-1",
        "az_ids": ["apne1-az1", "apne1-az4"],
        "instance_types": ["c6in.xlarge", "c7i.xlarge"],
        "ttl_minutes": 30,
        "max_cost_usd": 5,
    }
    sweep.update(over)
    return {"sweep": sweep, "probe": {"methods": ["tcp", "ws"], "duration_s": 60}, "ranking": {"metric": "ws.p99"}}


def test_shipped_examples_load_and_plan() -> None:
    """examples/sweep-aws.toml and sweep-local.toml are valid and produce a plan."""
    for name in ("sweep-aws.toml", "sweep-local.toml"):
        cfg = load_config(EXAMPLES / name)
        plan = describe(cfg)
        assert plan["candidates"] and plan["within_budget"], name


def test_candidates_are_the_zone_by_type_product_in_order() -> None:
    """Two AZ IDs x two instance types give four named candidates."""
    cfg = parse_config(_aws())
    assert [c.name for c in candidates(cfg)] == [
        "apne1-az1.c6in.xlarge",
        "apne1-az1.c7i.xlarge",
        "apne1-az4.c6in.xlarge",
        "apne1-az4.c7i.xlarge",
    ]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"az_ids": ["ap-northeast-1a"]}, "not availability zone IDs"),
        ({"market": "reserved"}, "sweep.market"),
        ({"keep": -1}, "sweep.keep"),
        ({"ttl_minutes": 0.5}, "must exceed the probe duration"),
        ({"colour": "blue"}, "unknown key"),
        ({"instances_per_candidate": True}, "not a boolean"),
        ({"instance_types": []}, None),
    ],
)
def test_bad_sweep_settings_name_the_key(over: dict[str, object], message: str | None) -> None:
    """Each bad setting is a ConfigError naming what is wrong (empty instance types give no candidates)."""
    if message is None:
        assert candidates(parse_config(_aws(**over))) == []
        return
    with pytest.raises(ConfigError, match=message):
        parse_config(_aws(**over))


def test_metric_must_use_measured_methods() -> None:
    """Ranking on rest.p50 when the probe does not run rest is refused before anything starts."""
    raw = _aws()
    raw["ranking"] = {"metric": "rest.p50"}
    with pytest.raises(ConfigError, match="does not measure"):
        parse_config(raw)


def test_cost_ceiling_is_enforced_with_the_upper_bound() -> None:
    """Expected cost = price x instances x TTL hours summed; above max_cost_usd is refused."""
    cfg = parse_config(_aws(max_cost_usd=0.2))
    assert expected_cost(cfg) == pytest.approx(2 * (0.2268 + 0.1785) * 0.5)
    with pytest.raises(ConfigError, match=r"exceeds sweep\.max_cost_usd"):
        check_cost(cfg)


def test_unknown_price_is_an_error_unless_given() -> None:
    """An instance type without a known price must be priced in [aws] so the ceiling means something."""
    raw = _aws(instance_types=["x9z.metal"])
    with pytest.raises(ConfigError, match="no price known"):
        expected_cost(parse_config(raw))
    raw["aws"] = {"price_usd_per_hour": {"x9z.metal": 1.5}}
    assert expected_cost(parse_config(raw)) == pytest.approx(2 * 1.5 * 0.5)


def test_missing_and_invalid_files_are_config_errors(tmp_path: Path) -> None:
    """A missing file and broken TOML are ConfigErrors, never tracebacks."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_probe_argv_points_local_zones_at_their_endpoints(tmp_path: Path) -> None:
    """A local candidate probes its own zone's URLs; an aws one probes the configured host."""
    cfg = parse_config(
        {
            "sweep": {"name": "l", "provider": "local", "ttl_minutes": 5},
            "probe": {"methods": ["ws"], "duration_s": 1},
            "local": {
                "zones": [
                    {"id": "a", "rest_url": "http://127.0.0.1:5001", "ws_url": "ws://127.0.0.1:5001"},
                    {"id": "b", "rest_url": "http://127.0.0.1:5002", "ws_url": "ws://127.0.0.1:5002"},
                ]
            },
        },
        base_dir=tmp_path,
    )
    argv = probe_argv(cfg, candidates(cfg)[1])
    assert argv[argv.index("--ws-url") + 1] == "ws://127.0.0.1:5002" and argv[-1] == "--json"
    assert argv[argv.index("--rest-url") + 1] == "http://127.0.0.1:5002"
    raw = _aws()
    raw["probe"] = {"methods": ["tcp", "ws"], "host": "fstream.binance.com", "duration_s": 60}
    aws = parse_config(raw)
    assert "fstream.binance.com" in probe_argv(aws, candidates(aws)[0])


def test_metric_parsing_and_weighted_evaluation() -> None:
    """'0.7*ws.p99 + 0.3*tcp.p50' evaluates to the weighted sum; bad terms are explained."""
    m = parse_metric("0.7*ws.p99 + 0.3*tcp.p50")
    assert m.evaluate({"ws.p99": 1000.0, "tcp.p50": 100.0}) == pytest.approx(730.0)
    assert parse_metric("ws.p99").evaluate({"ws.p99": 5.0}) == 5.0
    for bad, msg in (
        ("ws", "cannot parse"),
        ("ws.p42", "unknown statistic"),
        ("0*ws.p99", "positive"),
        ("ws.p99 + ws.p99", "twice"),
        ("", "empty"),
    ):
        with pytest.raises(ConfigError, match=msg):
            parse_metric(bad)


def test_figures_come_from_the_probe_summary_with_losses() -> None:
    """A probe document flattens to method.statistic in µs, loss ratio included."""
    figs = extract_figures(probe_doc(800.0, tcp_p50_us=120.0, ws_loss=0.01))
    assert figs["ws.p99"] == 800.0 and figs["tcp.p50"] == 120.0 and figs["ws.loss_ratio"] == 0.01


def test_per_ip_only_results_use_one_address_consistently() -> None:
    """Without an overall summary, the lowest-p50 address supplies all figures of that method."""
    doc = {
        "methods": {
            "tcp": {
                "per_ip": {
                    "1.1.1.1": {"summary": {"p50": 300.0, "p99": 310.0}},
                    "2.2.2.2": {"summary": {"p50": 200.0, "p99": 900.0}},
                }
            }
        }
    }
    figs = extract_figures(doc)
    assert figs == {"tcp.p50": 200.0, "tcp.p99": 900.0}


@given(
    st.dictionaries(st.sampled_from("abcdefgh"), st.floats(1, 1e6), min_size=1),
    st.integers(0, 4),
    st.dictionaries(st.sampled_from("ijklmn"), st.floats(1, 1e6)),
)
def test_doomed_candidates_never_become_winners(scores: dict[str, float], keep: int, later: dict[str, float]) -> None:
    """Whatever arrives later, a candidate doomed now is not among the final winners."""
    now = doomed(scores, keep)
    final = rank({**scores, **later})[:keep]
    assert not now & set(final)
    assert len(scores) - len(now) == min(keep, len(scores))


def test_local_simulator_zones_become_candidates(tmp_path: Path) -> None:
    """[local] simulator = "a:1ms;b:5ms" makes one candidate per simulator zone; zones + simulator is refused."""
    raw = {
        "sweep": {"name": "s", "provider": "local", "ttl_minutes": 5},
        "probe": {"methods": ["ws"], "duration_s": 1},
        "local": {"simulator": "a:1ms;b:5ms±0.5ms"},
    }
    cfg = parse_config(raw, base_dir=tmp_path)
    assert [c.name for c in candidates(cfg)] == ["a", "b"] and cfg.simulator_zones == "a:1ms;b:5ms±0.5ms"
    raw["local"] = {"simulator": "a:1ms", "zones": [{"id": "x", "rest_url": "http://h", "ws_url": "ws://h"}]}
    with pytest.raises(ConfigError, match="not both"):
        parse_config(raw, base_dir=tmp_path)
    raw["local"] = {"simulator": "a=1"}
    with pytest.raises(ConfigError, match="NAME:DELAYms"):
        parse_config(raw, base_dir=tmp_path)
