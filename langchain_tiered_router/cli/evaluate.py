"""``tiered-router eval`` and ``tiered-router calibrate``: measure and train routers on labelled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from .errors import fail, one_line_errors

__all__ = ["register"]

_POLICIES = ("classifier", "verifier", "cascade", "blend", "confidence", "config")
_ALIASES = {"cascade": "verifier"}  # the learned cascade: cheap first, a trained verifier escalates


def _load(config_path: Path, data: Path, fmt: str):
    from ..core.config import load_config
    from ..analysis.eval.data import load_eval_data
    from ..core.tiers import Ladder

    config = load_config(config_path)
    ladder = Ladder.from_config(config)
    cheap, strong = ladder.cheapest.name, ladder.baseline.name
    if not data.exists():
        raise FileNotFoundError(f"no such data file: {data}")
    items = load_eval_data(data, fmt, ladder.names, cheap_tier=cheap, baseline_tier=strong)
    return config, ladder, cheap, strong, items


def _split(items, cal_items, split: Optional[float]):
    from ..analysis.eval.data import split_by_hash

    if cal_items is not None:
        return cal_items, items
    if split is None:
        raise ValueError("give --calibrate-on FILE or --split FRACTION: the test data must not be the training data")
    if not 0 < split < 1:
        raise ValueError("--split must be between 0 and 1")
    return split_by_hash(items, split)


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['policy']} on {result['n']} test requests")
    table.add_column("metric")
    table.add_column("value", justify="right")
    pct = lambda v: "-" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    ci = result["parity_ci"]
    rows = [("savings", pct(result["savings"])),
            ("parity", f"{pct(result['parity'])} [{pct(ci['low'])}, {pct(ci['high'])}]"),
            ("quality / baseline quality", f"{pct(result['quality'])} / {pct(result['baseline_quality'])}")]
    for key in ("random_savings", "oracle_savings", "apgr", "cpt50", "cpt80"):
        if result.get(key) is not None:
            rows.append((key, pct(result[key]) if key != "apgr" else f"{result[key]:.3f}"))
    rows.append(("tier share", ", ".join(f"{k} {pct(v)}" for k, v in result["tier_share"].items())))
    if result.get("threshold") is not None:
        rows.append(("threshold", f"{result['threshold']:.4f}"))
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)
    Console().print(f"{100 * result['savings']:.1f} % cheaper at {100 * result['parity']:.1f} % quality parity "
                    f"(95 % CI {100 * ci['low']:.1f}-{100 * ci['high']:.1f} %, {ci['method']})")


def _plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install 'langchain-tiered-router[plot]'") from None
    from ..analysis.eval.metrics import oracle_point, random_curve

    table, curve = result["_table"], result["_curve"]
    base_cost, base_q = table.c_strong.sum(), table.q_strong.mean()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p.cost / base_cost for p in curve.points], [p.quality / base_q for p in curve.points],
            label=f"{result['policy']} (all thresholds)")
    rnd = random_curve(table)
    ax.plot([p.cost / base_cost for p in rnd.points], [p.quality / base_q for p in rnd.points], "--",
            label="random mix")
    oracle = oracle_point(table)
    ax.scatter([oracle.cost / base_cost], [oracle.quality / base_q], marker="*", s=120, label="oracle")
    ax.scatter([1 - result["savings"]], [result["parity"]], color="red", zorder=5, label="calibrated threshold")
    ax.axhline(result["target_parity"], color="grey", lw=0.8)
    ax.set_xlabel("cost / cost of the baseline tier alone")
    ax.set_ylabel("quality parity")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def eval_command(
    config: Path = typer.Option(..., "--config", help="Router YAML (tiers, prices)."),
    data: Path = typer.Option(..., "--data", help="Test data: recorded-outcomes JSONL or RouteLLM CSV/folder."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl | routellm"),
    calibrate_on: Optional[Path] = typer.Option(None, "--calibrate-on", help="Separate calibration data."),
    split: Optional[float] = typer.Option(None, "--split", help="Calibrate on this fraction of --data (sha256)."),
    target_parity: float = typer.Option(0.95, "--target-parity", min=0.0, max=1.5),
    policy: str = typer.Option("classifier", "--policy", help=" | ".join(_POLICIES)),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the results as JSON."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the cost-quality curve as a PNG."),
) -> None:
    """Train and calibrate a router on calibration data, then measure it on test data."""
    from rich.progress import Progress

    from ..analysis.eval.data import load_eval_data
    from ..analysis.eval.harness import calibrate, evaluate_config, evaluate_router

    if policy not in _POLICIES:
        raise fail(f"unknown policy {policy!r}; choose one of {', '.join(_POLICIES)}")
    policy = _ALIASES.get(policy, policy)
    with one_line_errors():
        cfg, ladder, cheap, strong, items = _load(config, data, fmt)
        estimated = any(o.estimated_tokens for i in items for o in i.outcomes.values())
        if policy == "confidence":
            # the answer's own doubt (self-rating, sentinel) decides, read from the recorded responses
            from ..core.config import ConfidenceGateConfig, PolicyConfig

            conf = cfg.policy.confidence or ConfidenceGateConfig(kind="confidence")
            cfg = cfg.model_copy(update={"policy": PolicyConfig(kind="confidence", confidence=conf,
                                                                max_escalations=cfg.policy.max_escalations)})
        if policy in ("config", "confidence"):
            with Progress(transient=True) as bar:
                bar.add_task(f"routing {len(items)} requests through the engine", total=None)
                result = evaluate_config(cfg, items)
        else:
            cal_items = None
            if calibrate_on is not None:
                if not calibrate_on.exists():
                    raise FileNotFoundError(f"no such calibration file: {calibrate_on}")
                cal_items = load_eval_data(calibrate_on, fmt, ladder.names, cheap_tier=cheap, baseline_tier=strong)
            cal, test = _split(items, cal_items, split)
            if not cal or not test:
                raise ValueError("the split left no calibration or no test items")
            with Progress(transient=True) as bar:
                task = bar.add_task(f"calibrating {policy} on {len(cal)} requests", total=3)
                calibration = calibrate(policy, cal, ladder, cheap, strong, target_parity,
                                        progress=lambda msg: bar.update(task, advance=1, description=msg))
                bar.update(task, description=f"evaluating on {len(test)} requests")
                result = evaluate_router(calibration, test, ladder, cheap, strong)
        result["token_estimate"] = ("token counts missing from the data were estimated as ceil(characters / 4)"
                                    if estimated else "token counts from the data")
        if plot is not None:
            if "_curve" not in result:
                raise ValueError(f"--plot draws a threshold sweep; --policy {policy} has none")
            _plot(result, plot)
        _print_table(result)
        if json_out is not None:
            json_out.write_text(json.dumps(_public(result), indent=2, default=float))


def calibrate_command(
    config: Path = typer.Option(..., "--config", help="Router YAML (tiers, prices)."),
    data: Path = typer.Option(..., "--data", help="Calibration data: recorded-outcomes JSONL or RouteLLM."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl | routellm"),
    target_parity: float = typer.Option(0.95, "--target-parity", min=0.0, max=1.5),
    policy: str = typer.Option("classifier", "--policy", help="classifier | verifier | blend"),
    out: Path = typer.Option(Path("router_model.npz"), "--out", help="Model file to write."),
) -> None:
    """Train and calibrate a router on your data and write the file a router config points to."""
    from ..analysis.eval.harness import calibrate
    from ..core.learned import save_router_model

    if policy not in ("classifier", "verifier", "blend"):
        raise fail(f"unknown policy {policy!r}; choose classifier, verifier or blend")
    with one_line_errors():
        _, ladder, cheap, strong, items = _load(config, data, fmt)
        cal = calibrate(policy, items, ladder, cheap, strong, target_parity)
        meta = {"target_parity": target_parity, "method": cal.method, "n": len(items),
                "parity_lower_bound": cal.cal_parity_lower_bound, "met": cal.met}
        models = cal.router.to_models(cal.threshold, meta)
        written = {}
        for kind, model in models.items():
            path = out if len(models) == 1 else out.with_name(f"{out.stem}.{kind}{out.suffix}")
            written[kind] = str(save_router_model(model, path))
    snippet = []
    if "classifier" in written:
        snippet.append(f"policy:\n  kind: cascade\n  classifier: {{kind: trained, path: {written['classifier']}}}")
    if "verifier" in written:
        snippet.append(f"tiers:\n  - name: {cheap}\n    ...\n    gates: [{{kind: verifier, path: {written['verifier']}}}]")
    print(f"calibrated {policy} on {len(items)} requests: threshold {cal.threshold:.4f}; parity lower bound "
          f"{100 * cal.cal_parity_lower_bound:.1f} % (target {100 * target_parity:.1f} %"
          f"{'' if cal.met else ', NOT met: everything goes to the strong tier'}), savings on the calibration "
          f"data {100 * cal.cal_savings:.1f} %")
    print("wrote " + ", ".join(written.values()) + "\nin the router config:\n" + "\n".join(snippet))


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("calibrate")(calibrate_command)
