"""``tiered-router eval`` and ``tiered-router calibrate``: measure and train routers on labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .errors import about, fail, one_line_errors

__all__ = ["register"]

_POLICIES = ("auto", "classifier", "cascade", "verifier", "blend", "confidence", "consistency", "split", "config")
_ALIASES = {"verifier": "cascade"}  # the learned cascade: cheap first, a trained verifier escalates
_BOUNDS = ("auto", "clt", "wsr")


def _load(config_path: Path, data: Path, fmt: str):
    from ..analysis.eval.data import load_eval_data
    from ..core.config import load_config
    from ..core.tiers import Ladder

    config = load_config(config_path)
    ladder = Ladder.from_config(config)
    ladder.warn_if_out_of_order()
    if not data.exists():
        raise FileNotFoundError(f"no such data file: {data}")
    items = load_eval_data(data, fmt, ladder.names, cheap_tier=ladder.cheapest.name,
                           baseline_tier=ladder.baseline.name, all_tiers=True)
    return config, ladder, items


def _split(items, cal_items, split: Optional[float]):
    from ..analysis.eval.data import split_by_hash

    if cal_items is not None:
        if split is not None:
            raise ValueError("give --calibrate-on FILE or --split FRACTION, not both: with --calibrate-on, all of "
                             "--data is the test data")
        return cal_items, items
    if split is None:
        raise ValueError("give --calibrate-on FILE or --split FRACTION: the test data must not be the training data")
    if not 0 < split < 1:
        raise ValueError("--split must be between 0 and 1")
    return split_by_hash(items, split)


def _spec(features: str):
    from ..core.features import FeatureSpec

    names = {f.strip() for f in features.split(",") if f.strip()}
    unknown = names - {"tokens", "embedding", "signals"}
    if unknown or not names:
        raise ValueError(f"--features takes a comma list of tokens, embedding, signals; got {features!r}")
    return FeatureSpec(tokens="tokens" in names, embedding="embedding" in names, signals="signals" in names)


def _progress_bar() -> tuple[Any, Callable[[str, float], None]]:
    """A bar on stderr (stdout may carry JSON) that moves with each step of the work:
    features read, regularisation tried, fold fitted, strategy certified, test replayed."""
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.percentage:>3.0f} %"), TimeElapsedColumn(), TextColumn("eta"),
                   TimeRemainingColumn(), transient=True, console=Console(stderr=True))
    task = bar.add_task("starting", total=1000)

    def update(message: str, fraction: float) -> None:
        bar.update(task, description=message, completed=int(1000 * min(1.0, max(0.0, fraction))))

    return bar, update


def eval_command(
    config: Path = typer.Option(..., "--config", help="Router YAML (tiers, prices)."),
    data: Path = typer.Option(..., "--data", help="Test data: recorded-outcomes JSONL or RouteLLM CSV/folder."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl | routellm"),
    calibrate_on: Optional[Path] = typer.Option(None, "--calibrate-on", help="Separate calibration data."),
    split: Optional[float] = typer.Option(None, "--split", help="Calibrate on this fraction of --data (sha256)."),
    target_parity: float = typer.Option(0.95, "--target-parity", min=0.0, max=1.5),
    policy: str = typer.Option("auto", "--policy", help=" | ".join(_POLICIES)),
    delta: float = typer.Option(0.05, "--delta", min=0.001, max=0.5,
                                help="The promise holds with probability 1 - delta."),
    bound: str = typer.Option("auto", "--bound", help="auto (normal from 300 requests, else betting) | clt (normal) "
                                                       "| wsr (betting, valid at any sample size)"),
    features: str = typer.Option("tokens,embedding,signals", "--features",
                                 help="Feature families the learned routers read."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout (the tables go to "
                                                      "stderr)."),
    json_out: Optional[Path] = typer.Option(None, "--json-out", help="Write the results as JSON to FILE."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the cost-quality curve as a PNG."),
    legacy_json: Optional[Path] = typer.Argument(None, hidden=True, help="--json FILE, the older spelling of --json-out FILE."),
) -> None:
    """Train and calibrate a router on calibration data, then measure it on test data."""
    import sys

    from ..analysis.eval.calibration import calibrate, ladder_table
    from ..analysis.eval.data import MMLU_OUTPUT_TOKENS, distinct_rows, load_eval_data
    from ..analysis.eval.harness import evaluate, evaluate_config
    from .eval_output import plot_result, print_result, public
    from .outputs import checked_outputs, emit_json, said_written

    if policy not in _POLICIES:
        raise fail(f"unknown policy {policy!r}; choose one of {', '.join(_POLICIES)}")
    if bound not in _BOUNDS:
        raise fail(f"unknown bound {bound!r}; choose auto, clt or wsr")
    if legacy_json is not None:
        if not as_json or json_out is not None:
            raise fail(f"unexpected argument {legacy_json}")
        # `--json FILE` wrote a file before --json became the stdout flag every command has
        print(f"note: --json FILE is now --json-out FILE (writing {legacy_json})", file=sys.stderr)
        as_json, json_out = False, legacy_json
    policy = _ALIASES.get(policy, policy)
    if policy == "config" and (calibrate_on is not None or split is not None):
        raise fail("--policy config routes all of --data through the engine as the config says: it calibrates "
                   "nothing, so --calibrate-on and --split do not apply")
    with one_line_errors():
        plot = checked_outputs(json_out, plot, {"--data": data, "--calibrate-on": calibrate_on, "--config": config})
        spec = _spec(features)
        cfg, ladder, items = _load(config, data, fmt)
        estimated = any(o.estimated_tokens for i in items for o in i.outcomes.values())
        unknown = sum(o.output_unknown for i in items for o in i.outcomes.values())
        bar, update = _progress_bar()
        with bar:
            if policy == "config":
                update(f"routing {len(items)} requests through the engine", 0.1)
                with about(str(data)):
                    result = evaluate_config(cfg, items)
            else:
                cal_items = None
                if calibrate_on is not None:
                    if not calibrate_on.exists():
                        raise FileNotFoundError(f"no such calibration file: {calibrate_on}")
                    cal_items = load_eval_data(calibrate_on, fmt, ladder.names, cheap_tier=ladder.cheapest.name,
                                               baseline_tier=ladder.baseline.name, all_tiers=True)
                cal, test = _split(items, cal_items, split)
                cal, repeated = distinct_rows(cal)
                if not cal or not test:
                    raise ValueError("the split left no calibration or no test items")
                with about(str(data) if calibrate_on is not None else f"{data}, test part"):
                    ladder_table(test, ladder)  # test data the headline cannot be measured on: said before calibrating
                with about(str(calibrate_on) if calibrate_on is not None else f"{data}, calibration part"):
                    calibration = calibrate(cal, ladder, target_parity, policy=policy, delta=delta, bound=bound,
                                            spec=spec, max_escalations=cfg.policy.max_escalations,
                                            progress=lambda m, f: update(f"calibrating on {len(cal)}: {m}", 0.75 * f))
                _note_repeated(calibration, repeated, len(cal), cal)
                _note_gates(calibration, cfg)
                with about(str(data) if calibrate_on is not None else f"{data}, test part"):
                    result = evaluate(calibration, test, ladder,
                                      progress=lambda m, f: update(f"testing on {len(test)}: {m}", 0.75 + 0.25 * f))
                if calibrate_on is not None:
                    _note_overlap(result, cal, test)
        result["token_estimate"] = ("token counts missing from the data were estimated as ceil(characters / 4)"
                                    if estimated else "token counts from the data")
        if unknown:
            result["token_estimate"] += (f"; {unknown:,} outcomes have neither a response nor output_tokens: each "
                                         f"is costed at {MMLU_OUTPUT_TOKENS} output token (a one-letter answer), so "
                                         "costs and savings there count the prompts only; give output_tokens")
        print_result(result, stderr=as_json)
        if plot is not None:
            said_written("the plot", plot_result(result, plot), stdout_is_json=as_json)
        emit_json(public(result), as_json=as_json, json_out=json_out)


def _note_repeated(calibration: Any, repeated: int, kept: int, items: Any = ()) -> None:
    """Rows copied into the calibration data are one piece of evidence each: they were
    counted once (``distinct_rows``), and the output says so; so are ids that name more
    than one row (two files joined, an export that reused ids)."""
    if repeated:
        calibration.notes.insert(0, f"{repeated} calibration rows repeat an earlier row (the same request and "
                                    f"outcomes): each is counted once ({kept} requests), since the promise is about "
                                    "distinct requests")
    ids = [item.id for item in items]
    reused = len(ids) - len(set(ids))
    if reused:
        calibration.notes.append(f"{reused} calibration rows reuse the id of an earlier, different row: were two "
                                 "files joined? Every row is used")


def _note_gates(calibration: Any, cfg: Any) -> None:
    """The config's gates are not in the certified figures: the strategies are calibrated
    on the recorded scores, and a served router whose gate fails an answer escalates it
    (an outside run: 36.1 % certified, 32.1 % served). Say so, and where they are measured."""
    gates = len(cfg.gates) + len(cfg.tool_gates) + sum(len(t.gates or ()) + len(t.tool_gates or ())
                                                       for t in cfg.tiers)
    if gates:
        calibration.notes.append(
            f"the config's {gates} gate{'s' if gates != 1 else ''} are not in these figures: routing is calibrated on "
            "the recorded scores, while a served router escalates every answer a gate fails (more cost, another "
            "tier); `eval --policy config` routes the data through the engine, gates and all")


def _note_overlap(result: dict, cal: list, test: list) -> None:
    """A test set that shares prompts with the calibration set is not held out: say so
    beside the headline (``--split`` cannot overlap; two files can)."""
    seen = {item.prompt for item in cal}
    shared = sum(item.prompt in seen for item in test)
    if shared:
        notes = result.setdefault("calibration", {}).setdefault("notes", [])
        notes.append(f"{shared} of the {len(test)} test requests have a prompt that is also in the calibration data: "
                     "the figures above are not held out for them")


def calibrate_command(
    config: Path = typer.Option(..., "--config", help="Router YAML (tiers, prices)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Calibration data: recorded-outcomes JSONL or RouteLLM."),
    from_db: Optional[str] = typer.Option(None, "--from-db",
                                          help="Calibrate on the shadow-sampled records of a telemetry DB (a file, or "
                                               "postgresql://...) instead."),
    since: Optional[str] = typer.Option(None, "--since", help="With --from-db: only records after (24h, 7d, a date)."),
    save_data: Optional[Path] = typer.Option(None, "--save-data",
                                             help="With --from-db: also write the labelled records as JSONL."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl | routellm"),
    target_parity: float = typer.Option(0.95, "--target-parity", min=0.0, max=1.5),
    policy: str = typer.Option("auto", "--policy", help="auto | classifier | cascade | blend | confidence | "
                                                       "consistency | split"),
    delta: float = typer.Option(0.05, "--delta", min=0.001, max=0.5),
    bound: str = typer.Option("auto", "--bound", help="auto | clt | wsr"),
    features: str = typer.Option("tokens,embedding,signals", "--features"),
    out: Path = typer.Option(Path("router_model.npz"), "--out", help="Model file to write."),
) -> None:
    """Train and calibrate routing on your data and write the file a router config points to."""
    from ..analysis.eval.calibration import calibrate
    from ..analysis.eval.data import distinct_rows
    from ..analysis.eval.metrics import target_text
    from ..core.model_file import save_routing_model
    from ..analysis.report.summary import savings_phrase
    from .eval_output import pct

    policy = _ALIASES.get(policy, policy)
    if policy not in ("auto", "classifier", "cascade", "blend", "confidence", "consistency", "split"):
        raise fail(f"unknown policy {policy!r}; choose auto, classifier, cascade, blend, confidence, consistency "
                   "or split")
    if bound not in _BOUNDS:
        raise fail(f"unknown bound {bound!r}; choose auto, clt or wsr")
    from ..core.redact import redact_secrets
    from .outputs import check_distinct, check_writable

    with one_line_errors():
        check_writable(out, "--out")
        check_writable(save_data, "--save-data")
        check_distinct({"--out": out, "--save-data": save_data}, {"--data": data, "--from-db": from_db,
                                                                   "--config": config})
        spec = _spec(features)
        if from_db is not None:
            if data is not None:
                raise ValueError("give --data FILE or --from-db TELEMETRY_DB, not both")
            from .shadow_calibration import load_shadow_items

            cfg, ladder, items = load_shadow_items(config, from_db, since, save_data)
        elif data is None:
            raise ValueError("give --data FILE (recorded outcomes) or --from-db TELEMETRY_DB (production shadows)")
        else:
            if since is not None or save_data is not None:
                raise ValueError("--since and --save-data go with --from-db")
            cfg, ladder, items = _load(config, data, fmt)
        items, repeated = distinct_rows(items)
        bar, update = _progress_bar()
        with bar, about(redact_secrets(str(from_db)) if from_db is not None else str(data)):
            cal = calibrate(items, ladder, target_parity, policy=policy, delta=delta, bound=bound, spec=spec,
                            max_escalations=cfg.policy.max_escalations, progress=update)
        _note_repeated(cal, repeated, len(items), items)
        _note_gates(cal, cfg)
        written = save_routing_model(cal.model, out)
    chosen = cal.chosen
    print(f"calibrated on {len(items)} requests, target parity {target_text(target_parity)}: "
          f"chose {chosen.name}"
          + (f" (operating point {chosen.param:.4g})" if chosen.param is not None and chosen.name != "baseline" else ""))
    for cand in cal.candidates:
        if cand.name == "baseline":
            continue
        if cand.chosen is None:
            print(f"  {cand.name}: no operating point kept the promise")
        else:
            print(f"  {cand.name}: {savings_phrase(cand.cal['savings'])} at {pct(cand.cal['parity'])} parity "
                  f"(savings lower bound {pct(cand.savings_lb)}; over all {cand.certified} points kept "
                  f"{pct(cand.savings_lb_all)}, shipped only above 0), cross-fitted on the calibration data")
    for note in cal.notes:
        print(f"note: {note}")
    print(f"promise: {cal.guarantee()}")
    print(f"wrote {written}\nin the router config:\npolicy:\n  kind: auto\n  path: {written}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("calibrate")(calibrate_command)
