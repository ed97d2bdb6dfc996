"""The batch runner: records in, one job per tier per wave, gates on every output, results out.

The loop, until every record is served, flagged or failed:

1. the lowest tier with waiting records forms a wave: its records become jobs within
   Bedrock's per-job limits (``planning.split_sizes``), and a remainder below the
   minimum goes on-demand (or is refused, by config);
2. each job's input (recordId + modelInput lines) is written to S3 and the job is
   created with ``CreateModelInvocationJob`` (at most ``max_concurrent_jobs`` at once);
3. jobs are polled with ``GetModelInvocationJob`` every ``poll_interval_s``; a finished
   job's ``.jsonl.out`` is read back and every record judged (``cascade.Cascade``):
   served, or waiting on the next tier, or retried, or finished;
4. each finished record is written to the telemetry sinks once.

Waves go up the ladder one tier at a time, so records escalated from below join the
same wave as records that start on a tier: the fewest jobs. The state file is saved
after every step (``state.RunState``); ``BatchRunner.resume`` picks up a run whose
runner died, polling its jobs instead of creating them again.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import secrets
import time
from pathlib import Path
from typing import IO, Any, Callable

from ..core.bedrock_ids import check_bedrock_ids
from ..core.build import build_router
from ..core.config import BatchConfig, RouterConfig, load_config
from ..core.engine import Router
from ..core.backends import classify_model_limit, model_limit_kind
from ..core.errors import (GateFailed, LadderExhaustedError, MalformedReplyError, ModelLimitError, TierCallError,
                           TransportError)
from ..core.pinning import MemoryPinStore
from .cascade import Cascade, error_kind_for_code
from .errors import BatchExhaustedError, BatchJobError, BatchSettingsError, BatchStateError
from .formats import model_input, parse_output, unsent_params
from .inputs import file_digest, read_records
from .jobs import RETRYABLE_CREATE_ERRORS, JobControl, JobInfo
from .on_demand import OnDemandBackend
from .planning import job_name, split_sizes
from .pricing import BatchPricing
from .results import write_results
from .s3 import S3Store, parse_s3_uri
from .settings import BatchClients, check_formats, config_digest, resolve_settings
from .state import JobState, RecordState, RunState
from .summary import BatchSummary, summarize_run
from .telemetry import baseline_costs, emit, request_id_for, routing_result

__all__ = ["BatchRunner"]

log = logging.getLogger("langchain_tiered_router.batch")

class BatchRunner:
    """Runs (or resumes) one batch run; ``run()`` returns its ``BatchSummary``."""

    def __init__(self, config: RouterConfig, state: RunState, state_path: str | Path, settings: BatchConfig, *,
                 clients: BatchClients | None = None, router: Router | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        check_formats(config, settings)
        self.config = config
        self.state = state
        self.state_path = Path(state_path)
        self.settings = settings
        self.clients = clients or BatchClients.from_config(config, settings)
        self.router = router or build_router(config, pin_store=MemoryPinStore())
        for tier in self.router.ladder:
            unsent = unsent_params(tier, settings.invocation_type)
            if unsent:
                log.warning("tier %s: model_kwargs %s are sent on live calls but not in batch records",
                            tier.name, ", ".join(unsent))
        self.backend = OnDemandBackend(self.clients.runtime, settings.invocation_type)
        self.pricing = BatchPricing(config, self.router.ladder, settings.discount)
        self.cascade = Cascade(self.router, self.pricing, self.backend, max_resubmits=settings.max_resubmits)
        self.jobs = JobControl(self.clients.bedrock)
        self.s3 = S3Store(self.clients.s3)
        self._sleep = sleep
        self._started = time.perf_counter()
        self._lock: IO[bytes] | None = None  # the run's lock (``_lock_run``), held from start or resume to the end
        self._saved_at, self._save_s = time.monotonic(), 0.0  # the last save: when, and how long it took

    # -- making and finding runs ----------------------------------------------------------
    @classmethod
    def start(cls, config: Any, input_path: str | Path, out_path: str | Path, *,
              state_path: str | Path | None = None, bucket: str | None = None, role_arn: str | None = None,
              clients: BatchClients | None = None, **overrides: Any) -> "BatchRunner":
        """A new run, or the unfinished one the state file holds for the same input and config."""
        config = load_config(config)
        check_bedrock_ids((tier.model_id for tier in config.tiers),  # Bedrock would refuse every record's job
                          endpoint_url=config.endpoint_url, source=config._source)
        settings = resolve_settings(config, bucket=bucket, role_arn=role_arn, **overrides)
        state_path = Path(state_path or f"{out_path}.state.json")
        return cls._locked(state_path, lambda: cls._start(config, settings, input_path, out_path, state_path,
                                                          clients))

    @classmethod
    def _locked(cls, state_path: Path, make: Callable[[], "BatchRunner"]) -> "BatchRunner":
        """``make()``'s runner, holding the run's lock (``_lock_run``) from before it reads the state."""
        lock = _lock_run(state_path)
        try:
            runner = make()
        except BaseException:
            lock.close()
            raise
        runner._lock = lock
        return runner

    @classmethod
    def _start(cls, config: RouterConfig, settings: BatchConfig, input_path: str | Path, out_path: str | Path,
               state_path: Path, clients: BatchClients | None) -> "BatchRunner":
        if state_path.exists():
            state = RunState.load(state_path)
            digest = file_digest(input_path)
            if state.input_digest != digest or state.config_digest != config_digest(config):
                raise BatchStateError(
                    f"{state_path} holds run {state.run_id} of another input or router config; "
                    "pass another --state path, or delete it to start over")
            if Path(out_path).resolve() != Path(state.out_path).resolve():
                raise BatchStateError(f"{state_path} holds run {state.run_id}, which writes its results to "
                                      f"{state.out_path}, not {out_path}; give that --out (or another --state)")
            log.info("resuming batch run %s from %s", state.run_id, state_path)
            _move_to_bucket(state, settings.bucket)
            return cls(config, state, state_path, settings, clients=clients)
        if not settings.bucket:
            raise BatchSettingsError("a batch run needs an S3 bucket (--bucket s3://bucket/prefix)",
                                     path="batch.bucket")
        if not settings.role_arn:
            raise BatchSettingsError("a batch run needs the IAM role Bedrock assumes (--role-arn)",
                                     path="batch.role_arn")
        check_formats(config, settings)
        records = read_records(input_path)
        bucket_name, prefix = parse_s3_uri(settings.bucket)
        run_id = secrets.token_hex(6)
        folder = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        state = RunState(run_id=run_id, created_at=time.time(), config_digest=config_digest(config),
                         config=_with_absolute_sinks(config.model_dump(mode="json", by_alias=True,
                                                                       exclude_defaults=True)),
                         input_path=str(Path(input_path).resolve()), input_digest=file_digest(input_path),
                         prefix=f"s3://{bucket_name}/{folder}{run_id}/", out_path=str(Path(out_path).resolve()),
                         role_arn=settings.role_arn, records=records)
        runner = cls(config, state, state_path, settings, clients=clients)
        runner._choose_starts()
        return runner

    @classmethod
    def resume(cls, state_path: str | Path, *, config: Any = None, clients: BatchClients | None = None,
               **overrides: Any) -> "BatchRunner":
        """The run in ``state_path``, with its own config unless ``config`` (same routing) is given."""
        return cls._locked(Path(state_path), lambda: cls._resume(state_path, config, clients, **overrides))

    @classmethod
    def _resume(cls, state_path: str | Path, config: Any, clients: BatchClients | None,
                **overrides: Any) -> "BatchRunner":
        state = RunState.load(state_path)
        saved = RouterConfig.from_dict(state.config, source=str(state_path))
        if config is not None:
            config = load_config(config)
            if config_digest(config) != state.config_digest:
                raise BatchStateError(f"{state_path} was written with another router config (ladder, policy, "
                                      "gates or batch limits differ)")
        else:
            config = saved
        settings = resolve_settings(config, role_arn=state.role_arn, **overrides)
        return cls(config, state, state_path, settings, clients=clients)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> BatchSummary:
        try:
            self._choose_starts()  # a run killed while its records were being started: the rest
            self._emit_finished()
            while True:
                open_jobs = [j for j in self.state.jobs if j.status != "ingested"]
                if not open_jobs:
                    if self._next_wave():
                        continue
                    break
                moved = self._submit(open_jobs)
                moved = self._poll(open_jobs) or moved
                if not moved:
                    self._sleep(self.settings.poll_interval_s)
            return self._finalize()
        finally:
            self.close()

    def close(self) -> None:
        """Let another process take the run (``run`` does at its end)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def summary(self) -> BatchSummary:
        summary = summarize_run(self.state, state_path=self.state_path, ladder_order=self.router.ladder.names,
                                baseline=lambda r: baseline_costs(self.pricing, r))
        summary.seconds = round(time.perf_counter() - self._started, 3)
        return summary

    def _save(self) -> None:
        began = time.monotonic()
        self.state.save(self.state_path)
        self._saved_at = time.monotonic()
        self._save_s = self._saved_at - began

    def _save_when_due(self) -> None:
        """Save while judging a job's records, when the time since the last save is at least
        ``SAVE_TIME_SHARE`` times what that save took (and ``INGEST_SAVE_MIN_S``): a gate
        that calls a model (a self-grade) makes a job's records slow to judge, and a runner
        killed before the job's end would make (and pay) every one of those calls again."""
        if time.monotonic() - self._saved_at >= max(INGEST_SAVE_MIN_S, SAVE_TIME_SHARE * self._save_s):
            self._save()

    def _choose_starts(self) -> None:
        """Each record's start tier, by the policy. A policy that asks a model (the LLM
        classifier) makes one call per record: they run ``START_CALLS`` at a time, and the
        state is saved every ``START_SAVE_S`` seconds, so a run killed meanwhile resumes
        with the records not yet started (``run``) instead of paying every call again."""
        todo = [r for r in self.state.records if r.status == "waiting" and (not r.start_tier or r.tier is None)]
        if not todo:
            return
        saved = time.monotonic()

        def start(record: RecordState) -> None:
            now = time.time()
            try:
                self.cascade.start(record, request_id_for(self.state, record), now)
            except Exception as exc:  # noqa: BLE001 - a classifier that fails starts the record cheap
                record.start_tier = self.router.ladder.cheapest.name
                record.start_reason = f"start policy failed ({type(exc).__name__}: {exc}); cheapest tier"
                record.tier, record.status, record.since = record.start_tier, "waiting", now

        # a few calls ahead at a time: a run stopped here (Ctrl-C) waits for those only
        step = START_CALLS * 4
        with cf.ThreadPoolExecutor(max_workers=START_CALLS, thread_name_prefix="tiered-router-start") as pool:
            for at in range(0, len(todo), step):
                list(pool.map(start, todo[at:at + step]))
                if time.monotonic() - saved >= START_SAVE_S:
                    self._save()
                    saved = time.monotonic()
        self._save()

    # -- waves -----------------------------------------------------------------------------
    def _next_wave(self) -> bool:
        waiting = [r for r in self.state.records if r.status == "waiting"]
        if not waiting:
            return False
        ladder = self.router.ladder
        tier = min({r.tier or "" for r in waiting}, key=lambda name: ladder[name].index)
        group = sorted((r for r in waiting if r.tier == tier), key=lambda r: r.index)
        self.state.wave += 1
        wave = self.state.wave
        sizes, left = split_sizes(len(group), self.settings.min_records_per_job, self.settings.max_records_per_job)
        now, at = time.time(), 0
        for chunk, size in enumerate(sizes, start=1):
            name = job_name(self.state.run_id, tier, wave, chunk)
            members = group[at:at + size]
            at += size
            self.state.jobs.append(JobState(name=name, tier=tier, model_id=ladder[tier].model_id, wave=wave,
                                            records=[r.record_id for r in members],
                                            input_uri=f"{self.state.prefix}input/{name}.jsonl",
                                            output_uri=f"{self.state.prefix}output/"))
            for r in members:
                r.status, r.job, r.since = "in_job", name, now
        rest = group[at:]
        self._save()
        log.info("wave %d, tier %s: %d records in %d jobs, %d left below the job minimum", wave, tier, at,
                 len(sizes), len(rest))
        if rest:
            if self.settings.on_demand_below_min:
                self._on_demand(tier, rest)
            else:
                reason = (f"{len(rest)} records for tier {tier} are fewer than batch.min_records_per_job "
                          f"({self.settings.min_records_per_job}) and batch.on_demand_below_min is off")
                for r in rest:
                    self.cascade.refused(r, reason, now)
                self._save()
                self._emit_finished()
        return True

    def _on_demand(self, tier_name: str, records: list[RecordState]) -> None:
        """Call the tier live for a group too small for a job, and judge each answer as it
        comes. The state is saved as answers come, as often as costs at most a tenth of the
        time (a large run's state takes seconds to write), so a runner killed meanwhile
        resumes without calling again the records whose answers were saved: only the calls
        in flight at the kill, and any answered since the last save, are made (and paid) twice."""
        tier = self.router.ladder[tier_name]
        requests = {r.record_id: self.cascade.request(r, request_id_for(self.state, r)) for r in records}
        saved, save_s, unsaved = time.monotonic(), 0.0, False
        with cf.ThreadPoolExecutor(max_workers=min(8, len(records))) as pool:
            futures = {pool.submit(self.backend.call, tier, requests[r.record_id]): r for r in records}
            pending = set(futures)
            while pending:
                # answers held back from a save are saved when the time share allows, even if none follows
                wait_s = max(0.0, saved + SAVE_TIME_SHARE * save_s - time.monotonic()) if unsaved else None
                done, pending = cf.wait(pending, timeout=wait_s, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    record, now = futures[future], time.time()
                    try:
                        outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - judged here, like a batch error line
                        self._call_failed(record, exc, now)
                    else:
                        self.cascade.answered(record, outcome, mode="on_demand", job=None,
                                              request_id=requests[record.record_id].request_id, now=now)
                    self.state.on_demand[tier_name] = self.state.on_demand.get(tier_name, 0) + 1
                    unsaved = True
                if unsaved and time.monotonic() - saved >= SAVE_TIME_SHARE * save_s:
                    began = time.monotonic()
                    self._save()
                    saved = time.monotonic()
                    save_s, unsaved = saved - began, False
        self._save()
        self._emit_finished()

    def _call_failed(self, record: RecordState, exc: BaseException, now: float) -> None:
        if isinstance(exc, TransportError):
            self.cascade.failed(record, kind=exc.kind, error=str(exc), mode="on_demand", job=None, now=now)
        elif isinstance(exc, MalformedReplyError):
            self.cascade.malformed(record, str(exc), mode="on_demand", job=None, now=now)
        else:
            self.cascade.failed(record, kind=None, error=f"{type(exc).__name__}: {exc}", mode="on_demand",
                                job=None, now=now, label=type(getattr(exc, "cause", None) or exc).__name__,
                                limit=exc.kind if isinstance(exc, ModelLimitError) else None)

    # -- jobs --------------------------------------------------------------------------------
    def _submit(self, open_jobs: list[JobState]) -> bool:
        running = sum(1 for j in open_jobs if j.status == "submitted")
        moved = False
        for job in open_jobs:
            if job.status != "planned":
                continue
            if running >= self.settings.max_concurrent_jobs:
                break
            try:
                self._create(job)
            except BatchJobError as exc:
                cause = exc.__cause__
                if cause is not None and _error_code(cause) in RETRYABLE_CREATE_ERRORS:
                    log.warning("%s; trying again at the next poll", exc)
                    break
                tier = self.router.ladder[job.tier]
                limit = classify_model_limit(cause, tier=tier.name, model_id=tier.model_id) if cause else None
                if limit is None or limit.kind not in self.router.retry.escalate_on:
                    raise
                self._refused(job, limit)  # this model is not to be had here: its records go up, as live
                moved = True
                continue
            running += 1
            moved = True
        return moved

    def _refused(self, job: JobState, limit: ModelLimitError) -> None:
        """Bedrock refused to create ``job`` for its model (``retry.escalate_on``: not
        enabled here): each of its records fails on that tier with the refusal and
        escalates, as a live call refused so does; no call was made, so nothing is billed."""
        now = time.time()
        log.warning("job %s refused for tier %s (%s); its records escalate", job.name, job.tier, limit)
        for rid in job.records:
            record = self.state.record(rid)
            if record.status == "in_job" and record.job == job.name:
                self.cascade.failed(record, kind=None, error=str(limit)[:500], mode="none", job=job.name, now=now,
                                    limit=limit.kind)
        job.status, job.bedrock_status, job.message, job.ended_at = "ingested", "Refused", str(limit)[:500], now
        self._save()
        self._emit_finished()

    def _create(self, job: JobState) -> None:
        tier = self.router.ladder[job.tier]
        rows = [{"recordId": rid, "modelInput": model_input(tier, self.cascade.prompt(self.state.record(rid)),
                                                               self.settings.invocation_type)}
                for rid in job.records]
        try:
            self.s3.put_lines(job.input_uri, rows)
            arn = self.jobs.find(job.name) or self.jobs.create(
                name=job.name, model_id=tier.model_id, role_arn=self.state.role_arn, input_uri=job.input_uri,
                output_uri=job.output_uri, invocation_type=self.settings.invocation_type,
                timeout_hours=self.settings.timeout_hours)
        except Exception as exc:  # noqa: BLE001 - a refused job stops the run; its state is saved
            raise BatchJobError(f"{type(exc).__name__}: {exc}", job=job.name, tier=job.tier) from exc
        job.arn, job.status, job.submitted_at, job.bedrock_status = arn, "submitted", time.time(), "Submitted"
        self._save()
        log.info("submitted job %s (%d records) for tier %s", job.name, len(job.records), job.tier)

    def _poll(self, open_jobs: list[JobState]) -> bool:
        moved = False
        for job in open_jobs:
            if job.status != "submitted" or job.arn is None:
                continue
            try:
                info = self.jobs.describe(job.arn)
            except Exception as exc:  # noqa: BLE001
                if _error_code(exc) != "ResourceNotFoundException":
                    raise BatchJobError(f"cannot poll the job ({type(exc).__name__}: {exc}); the run is saved: "
                                        f"tiered-router batch resume --state {self.state_path}",
                                        job=job.name, tier=job.tier) from exc
                info = JobInfo(job.arn, "Failed", "the job is gone (ResourceNotFoundException)")
            changed = job.bedrock_status != info.status
            job.bedrock_status = info.status
            if info.terminal:
                self._ingest(job, info)
                moved = True
            elif changed:
                self._save()  # so ``batch status`` shows where the job is
        return moved

    def _ingest(self, job: JobState, info: JobInfo) -> None:
        now = time.time()
        rows: dict[str, dict[str, Any]] = {}
        folder = f"{job.output_uri}{(job.arn or '').rsplit('/', 1)[-1]}/"
        try:
            for uri in self.s3.keys(folder, ".jsonl.out"):
                for row in self.s3.read_lines(uri):
                    rows[str(row.get("recordId"))] = row
        except Exception as exc:  # noqa: BLE001 - a job that ended without output may have left none there
            # A job that completed wrote its output: not reading it is not "no output", or
            # every record would be resubmitted (paid again) and end failed at $0.
            if _error_code(exc) not in ("NoSuchBucket", "NoSuchKey", "AccessDenied", "404") \
                    or info.status in ("Completed", "PartiallyCompleted"):
                raise BatchJobError(f"cannot read the job's output ({type(exc).__name__}: {exc}); the run is "
                                    f"saved: tiered-router batch resume --state {self.state_path}",
                                    job=job.name, tier=job.tier) from exc
            log.warning("cannot read the output of job %s: %s", job.name, exc)
        tier = self.router.ladder[job.tier]
        stopped = info.status == "Stopped"
        for rid in job.records:
            record = self.state.record(rid)
            if record.status != "in_job" or record.job != job.name:
                continue
            row = rows.get(rid)
            if row is None:
                self.cascade.unprocessed(record, stopped=stopped, message=info.message or info.status,
                                         job=job.name, now=now)
            elif "modelOutput" in row:
                try:
                    answer = parse_output(tier, row["modelOutput"], self.cascade.prompt(record),
                                          self.settings.invocation_type)
                except MalformedReplyError as exc:
                    self.cascade.malformed(record, str(exc), mode="batch", job=job.name, now=now)
                else:
                    self.cascade.answered(record, answer, mode="batch", job=job.name,
                                          request_id=request_id_for(self.state, record), now=now)
            else:
                error = row.get("error") if isinstance(row.get("error"), dict) else {}
                try:
                    code = int(error.get("errorCode") or 500)
                except (TypeError, ValueError):
                    code = 500
                message = str(error.get("errorMessage") or "record failed")
                self.cascade.failed(record, kind=error_kind_for_code(code), error=f"{code}: {message}",
                                    mode="batch", job=job.name, now=now, label=f"http_{code}",
                                    limit=model_limit_kind(message, status=code))
            self._save_when_due()  # a resume judges only the records still "in_job"
        job.status, job.message, job.ended_at = "ingested", info.message, now
        self._save()
        log.info("job %s ended %s; %d of %d records in its output", job.name, info.status,
                 sum(1 for rid in job.records if rid in rows), len(job.records))
        self._emit_finished()

    # -- telemetry and the end ---------------------------------------------------------------
    def _emit_finished(self) -> None:
        pending = [r for r in self.state.records if r.status == "done" and not r.recorded]
        if not pending:
            return
        emit(self.state, pending, self.cascade)
        for record in pending:
            record.recorded = True
        self._save()

    def _finalize(self) -> BatchSummary:
        write_results(self.state, self.cascade, self.state.out_path)
        self.state.finished = True
        self._save()
        summary = self.summary()
        if self.router.on_exhausted == "raise":
            failed = [r for r in self.state.records if r.served is None]
            if failed:
                raise BatchExhaustedError(
                    f"{len(failed)} of {len(self.state.records)} records found no acceptable answer "
                    f"(on_exhausted: raise); their results say why, in {self.state.out_path}",
                    [self._exhausted(r) for r in failed], summary)
        return summary

    def _exhausted(self, record: RecordState) -> LadderExhaustedError:
        errors: list[Exception] = []
        for a in record.attempts:
            if a.outcome == "gate_failed":
                errors.append(GateFailed(a.gate_reason or "", tier=a.tier, model_id=a.model_id, gate=a.gate or ""))
            elif a.outcome == "transport_error":
                errors.append(TransportError(a.error or "", tier=a.tier, model_id=a.model_id,
                                             kind=a.error_kind or "other"))
            else:
                errors.append(TierCallError(a.error or a.outcome, tier=a.tier, model_id=a.model_id))
        tiers = " -> ".join(a.tier for a in record.attempts)
        return LadderExhaustedError(f"record {record.id}: no tier produced an acceptable answer ({tiers}): "
                                    f"{record.error}", errors, routing_result(self.state, record, self.cascade))


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _move_to_bucket(state: RunState, bucket: str | None) -> None:
    """A run whose jobs were never created (a bucket that does not exist, one it may not
    write) takes the bucket given now; once Bedrock has a job, its files stay where they
    are, and another bucket is refused in words."""
    if not bucket:
        return
    name, prefix = parse_s3_uri(bucket)
    moved = f"s3://{name}/{prefix.strip('/') + '/' if prefix.strip('/') else ''}{state.run_id}/"
    if moved == state.prefix:
        return
    if any(job.arn for job in state.jobs):
        raise BatchSettingsError(f"run {state.run_id} keeps its jobs' files in {state.prefix}, where Bedrock "
                                 f"has them; resume it without --bucket (or with that bucket)", path="batch.bucket")
    old = state.prefix
    state.prefix = moved
    for job in state.jobs:  # planned, not created: their files go to the new place
        job.input_uri = f"{moved}input/{job.name}.jsonl"
        job.output_uri = f"{moved}output/"
    log.info("run %s: no job was created yet, so its files move from %s to %s", state.run_id, old, moved)


START_CALLS = 8  # start decisions made at once (each an LLM classifier's call, for that policy)
START_SAVE_S = 30.0  # how often the state is saved while records are being started
SAVE_TIME_SHARE = 10  # on-demand answers: saved when the last save took at most 1/10 of the time since
INGEST_SAVE_MIN_S = 1.0  # a job's records judged fast (no gate calls a model) cost no save of their own


def _lock_run(state_path: Path) -> IO[bytes]:
    """An exclusive lock on the run's state (a ``.lock`` file beside it, as the state
    file is replaced on every save): a second process on the same run would make every
    on-demand call again and write every telemetry record twice."""
    state_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(f"{state_path}.lock", "ab")
    try:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - no flock on this platform: one run at a time is on the user
        pass
    except OSError:
        handle.close()
        raise BatchStateError(f"{state_path} is being run by another process; wait for it, or stop it "
                              "(tiered-router batch stop) before resuming") from None
    return handle


def _with_absolute_sinks(config: dict[str, Any]) -> dict[str, Any]:
    """The saved config with its sinks' relative paths made absolute: a run resumed from
    another folder writes its telemetry where the run began."""
    for sink in (config.get("telemetry") or {}).get("sinks") or []:
        path = sink.get("path") if isinstance(sink, dict) else None
        if isinstance(path, str) and "://" not in path and not Path(path).is_absolute():
            sink["path"] = str(Path(path).resolve())
    return config
