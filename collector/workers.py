"""Pipeline workers: a pipeline's processors in several processes, so that one collector uses more than one core.

With ``workers: N`` on a pipeline, its processors run in N spawned processes, each span in the worker that owns its
trace, while this process keeps the receivers, the memory limiter and the exporters. The behaviour (acknowledgement,
backpressure, start, failure, shutdown) is ``docs/collector-config.md``, "Pipelines".
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from spanguard.collector.component import Backpressure, Batch, Consumer, TraceBatch
from spanguard.collector.config import CollectorConfig
from spanguard.collector.telemetry import Family, HasStats
from spanguard.processors import otlp

logger = logging.getLogger("spanguard.collector")

_READY_TIMEOUT = 180.0  # building Presidio's recognizers (and a NER model) takes a while on a small machine
_RETRY_INTERVAL = 0.5
_STATS_TTL = 1.0


def shard_of(trace_id: bytes, workers: int) -> int:
    """The worker that owns a trace: its id's last eight bytes (the random part of W3C ids) modulo ``workers``."""
    return int.from_bytes(trace_id[-8:], "big") % workers


def split(resource_spans: list[ResourceSpans], workers: int) -> list[bytes]:
    """The spans of a request by owning worker, each worker's part a serialized request with every span under its
    resource and scope (b"": no spans). Made of the spans' own bytes: no copies of the protobufs are built."""
    return otlp.encode_parts(resource_spans, lambda span: shard_of(span.trace_id, workers), workers)


def _encode(resource_spans: list[ResourceSpans]) -> bytes:
    return ExportTraceServiceRequest(resource_spans=resource_spans).SerializeToString()


def _decode(data: bytes) -> list[ResourceSpans]:
    return list(ExportTraceServiceRequest.FromString(data).resource_spans)


def _batch_bytes(batch: Batch) -> bytes:
    return batch.encoded if batch.encoded is not None else _encode(batch.resources)


def merge_stats(into: dict[str, Any], stats: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``stats`` into ``into``: numbers summed, mappings merged key by key, anything else kept from the first."""
    for key, value in stats.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, Mapping)):
            into.setdefault(key, value)
        elif isinstance(value, Mapping):
            current = into.get(key)
            into[key] = merge_stats(dict(current) if isinstance(current, Mapping) else {}, value)
        else:
            current = into.get(key)
            into[key] = (current if isinstance(current, (int, float)) and not isinstance(current, bool) else 0) + value
    return into


def worker_config(config: CollectorConfig, pipeline: str, index: int, workers: int) -> CollectorConfig:
    """The config worker ``index`` builds from: a processor config with ``for_worker(index, workers)`` (tail
    sampling's memory bounds and review budgets) gives its share, so the configured totals still hold."""
    processors = dict(config.processors)
    for pid in config.pipelines[pipeline].processors:
        component = processors[pid]
        share = getattr(component.config, "for_worker", None)
        if share is not None:
            processors[pid] = dataclasses.replace(component, config=share(index, workers))
    return dataclasses.replace(config, processors=processors)


class _Worker:
    """This process's side of one worker: its process, its two pipes, and the part of a request it holds."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: Any = None
        self.requests: Any = None  # requests from here, answered by the worker
        self.output: Any = None  # kept traces from the worker, answered from here
        self.send_lock = threading.Lock()  # a request's place in ``waiting`` is its place in the pipe
        self.waiting: deque[Future[tuple[Any, ...]]] = deque()  # the worker answers in order
        self.held: list[bytes] = []  # parts acknowledged to clients that the worker has not taken yet
        self.held_lock = threading.Lock()
        self.dead = False


class PipelineWorkers:
    """A consumer that runs a pipeline's processors in worker processes and passes their output to ``next_consumer``."""

    def __init__(
        self, config: CollectorConfig, pipeline: str, next_consumer: Consumer, *, telemetry: Any = None
    ) -> None:
        self._config = config
        self._pipeline = pipeline
        self._count = config.pipelines[pipeline].workers
        self._next = next_consumer
        self._telemetry = telemetry
        self._workers = [_Worker(i) for i in range(self._count)]
        self._readers: list[threading.Thread] = []
        self._retry_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._started = False
        self._shut = False
        self._state_lock = threading.Lock()
        self._stats_cache: tuple[float, dict[str, Any]] | None = None
        self._stats_lock = threading.Lock()

    # -- telemetry

    def _track(self, tracked: Mapping[Family, Sequence[str]]) -> None:
        """Report the workers' components (their ``stats`` summed over the workers) in this process's metrics."""
        track = getattr(self._telemetry, "track", None)
        if track is None:
            return
        for family, names in tracked.items():
            for name in names:
                track(family, name, _StatsView(self, family, name))

    def stats(self) -> dict[str, Any]:
        """Every worker's processor stats by family and name, summed (cached for a second: one scrape reads several
        families)."""
        with self._stats_lock:
            now = time.monotonic()
            if self._stats_cache is not None and now - self._stats_cache[0] < _STATS_TTL:
                return self._stats_cache[1]
            merged: dict[str, Any] = {}
            for worker in self._workers:
                reply = self._call(worker, ("stats",))
                if reply is not None and reply[0] == "stats":
                    merge_stats(merged, reply[1])
            self._stats_cache = (now, merged)
            return merged

    def _tally(self, counts: Mapping[tuple[str, bool, bool], int] | None) -> None:
        if counts and self._telemetry is not None and hasattr(self._telemetry, "decided_count"):
            for (tier, keep, early), n in counts.items():
                self._telemetry.decided_count(tier, keep, early, n)

    def healthy(self) -> bool:
        """Whether every worker process is alive."""
        return self._started and not any(w.dead or not w.process.is_alive() for w in self._workers)

    # -- lifecycle

    def start(self) -> None:
        """Spawn the workers and wait until each has built its processors."""
        with self._state_lock:
            if self._started or self._shut:
                return
            context = multiprocessing.get_context("spawn")
            for worker in self._workers:
                requests, worker_requests = context.Pipe()
                output, worker_output = context.Pipe()
                worker.process = context.Process(
                    target=worker_main,
                    args=(
                        worker_config(self._config, self._pipeline, worker.index, self._count),
                        self._pipeline,
                        worker.index,
                        worker_requests,
                        worker_output,
                        logging.getLogger().getEffectiveLevel(),
                    ),
                    name=f"spanguard-worker-{self._pipeline}-{worker.index}",
                    daemon=True,
                )
                worker.process.start()
                worker_requests.close()
                worker_output.close()
                worker.requests, worker.output = requests, output
            deadline = time.monotonic() + _READY_TIMEOUT
            tracked: Mapping[Family, Sequence[str]] = {}
            for worker in self._workers:
                if not worker.requests.poll(max(0.0, deadline - time.monotonic())):
                    self._kill_all()
                    raise RuntimeError(f"pipeline {self._pipeline}: worker {worker.index} did not start in time")
                try:
                    ready = worker.requests.recv()
                except EOFError:
                    ready = ("failed", "the process exited")
                if ready[0] != "ready":
                    self._kill_all()
                    raise RuntimeError(f"pipeline {self._pipeline}: worker {worker.index} failed to start: {ready[1]}")
                tracked = ready[1]
            self._track(tracked)
            for worker in self._workers:
                for target, name in ((self._serve_output, "out"), (self._serve_replies, "replies")):
                    thread = threading.Thread(
                        target=target, args=(worker,), name=f"spanguard-worker-{name}-{worker.index}", daemon=True
                    )
                    thread.start()
                    self._readers.append(thread)
            self._retry_thread = threading.Thread(target=self._retry_held, name="spanguard-worker-retry", daemon=True)
            self._retry_thread.start()
            self._started = True
            logger.info("pipeline %s: %d workers started", self._pipeline, self._count)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Hand over held parts, then have every worker shut its processors down (idempotent, safe unstarted)."""
        with self._state_lock:
            if self._shut:
                return
            self._shut = True
            started = self._started
        self._stop.set()
        if not started:
            return
        deadline = time.monotonic() + max(0.0, timeout)
        for worker in self._workers:
            if worker.held and not worker.dead:
                self._offer_held(worker)
            if worker.held:
                logger.warning(
                    "pipeline %s: worker %d could not take %d held part(s) at shutdown",
                    self._pipeline,
                    worker.index,
                    len(worker.held),
                )
        done = [
            self._submit(worker, ("shutdown", max(0.0, deadline - time.monotonic() - 1.0))) for worker in self._workers
        ]
        for worker, future in zip(self._workers, done, strict=True):
            try:
                future.result(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                pass
            worker.process.join(max(0.0, deadline - time.monotonic()) + 0.5)
            if worker.process.is_alive():
                logger.warning("pipeline %s: worker %d did not stop in time; terminated", self._pipeline, worker.index)
                worker.process.terminate()
                worker.process.join(2.0)
            worker.dead = True
        for thread in self._readers:
            thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
        for worker in self._workers:
            for conn in (worker.requests, worker.output):
                conn.close()

    def _kill_all(self) -> None:
        for worker in self._workers:
            if worker.process is not None and worker.process.is_alive():
                worker.process.kill()
                worker.process.join(2.0)
            worker.dead = True

    # -- the data path

    def consume(self, batch: TraceBatch) -> None:
        """Give each worker its part of the batch; refuse (retryably) what no worker took."""
        if not self._started or self._shut:
            raise Backpressure(f"pipeline {self._pipeline}: workers are not running", retry_after=1.0)
        for worker in self._workers:
            if worker.held:
                self._offer_held(worker)
                if worker.held:
                    raise Backpressure(f"pipeline {self._pipeline}: worker {worker.index} is full", retry_after=1.0)
        parts = split(batch.resource_spans, self._count)
        work = [(worker, data) for worker, data in zip(self._workers, parts, strict=True) if data]
        # Every part is sent before any answer is awaited, so the workers process them side by side.
        futures = [self._submit(worker, ("consume", data)) for worker, data in work]
        replies = [future.result() for future in futures]
        answers = zip(work, replies, strict=True)
        refused = [(worker, data, reply) for (worker, data), reply in answers if reply[0] != "ok"]
        if not refused:
            return
        if len(refused) == len(work):
            worker, _, reply = refused[0]
            if reply[0] == "error":
                raise RuntimeError(f"pipeline {self._pipeline}: worker {worker.index} failed: {reply[1]}")
            raise Backpressure(reply[1], retry_after=reply[2])
        for worker, data, reply in refused:
            if reply[0] == "error":
                # A processor raised on this part: the in-process chain would have failed the request too.
                logger.error("pipeline %s: worker %d failed on a part (%s)", self._pipeline, worker.index, reply[1])
            else:
                with worker.held_lock:
                    worker.held.append(data)  # the rest was taken, so this part is acknowledged with it

    def _submit(self, worker: _Worker, message: tuple[Any, ...]) -> Future[tuple[Any, ...]]:
        """Send a request; the future gets the worker's answer (a retryable refusal when the worker is down)."""
        future: Future[tuple[Any, ...]] = Future()
        with worker.send_lock:
            if not worker.dead and worker.requests is not None:
                worker.waiting.append(future)
                try:
                    worker.requests.send(message)
                    return future
                except (OSError, EOFError, ValueError):
                    worker.waiting.pop()
                    self._died(worker)
        future.set_result(self._down(worker))
        return future

    def _down(self, worker: _Worker) -> tuple[Any, ...]:
        return ("backpressure", f"pipeline {self._pipeline}: worker {worker.index} is down", 5.0)

    def _serve_replies(self, worker: _Worker) -> None:
        """Hand each answer of a worker to the request waiting for it (answers come in request order)."""
        while True:
            try:
                reply = worker.requests.recv()
            except (OSError, EOFError, ValueError):
                break
            self._tally(reply[-1] if reply and isinstance(reply[-1], dict) else None)
            with worker.send_lock:
                future = worker.waiting.popleft() if worker.waiting else None
            if future is not None:
                future.set_result(reply)
        with worker.send_lock:
            self._died(worker)
            waiting, worker.waiting = list(worker.waiting), deque()
        for future in waiting:
            future.set_result(self._down(worker))

    def _call(self, worker: _Worker, message: tuple[Any, ...]) -> tuple[Any, ...] | None:
        reply = self._submit(worker, message).result()
        return None if reply == self._down(worker) else reply

    def _died(self, worker: _Worker) -> None:
        if not worker.dead:
            worker.dead = True
            if not self._shut:
                logger.error("pipeline %s: worker %d exited; its traces are refused", self._pipeline, worker.index)

    def _offer_held(self, worker: _Worker) -> None:
        with worker.held_lock:  # one offer at a time, or a part could be taken twice
            while worker.held:
                reply = self._call(worker, ("consume", worker.held[0]))
                if reply is None or reply[0] == "backpressure":
                    return
                if reply[0] == "error":
                    logger.error(
                        "pipeline %s: worker %d failed on a held part (%s)", self._pipeline, worker.index, reply[1]
                    )
                worker.held.pop(0)

    def _retry_held(self) -> None:
        while not self._stop.wait(_RETRY_INTERVAL):
            for worker in self._workers:
                if worker.held and not worker.dead:
                    try:
                        self._offer_held(worker)
                    except Exception:
                        logger.exception("pipeline %s: handing a held part over failed", self._pipeline)

    def _serve_output(self, worker: _Worker) -> None:
        """Pass a worker's kept traces to the exporters and answer how that went."""
        while True:
            try:
                message = worker.output.recv()
            except (OSError, EOFError):
                return
            self._tally(message[2] if len(message) > 2 else None)
            try:
                # Passed on as bytes: an exporter sends them as they are, without a decode and a re-encode here.
                self._next.consume(TraceBatch.from_bytes(message[1], message[3] if len(message) > 3 else None))
                answer: tuple[Any, ...] = ("ok",)
            except Backpressure as error:
                remaining = _batch_bytes(error.remaining) if error.remaining is not None else None
                answer = ("backpressure", error.reason, error.retry_after, remaining)
            except Exception as error:
                logger.exception("pipeline %s: exporting a worker's output failed", self._pipeline)
                answer = ("error", type(error).__name__)
            try:
                worker.output.send(answer)
            except (OSError, EOFError):
                return


class _StatsView:
    """What the telemetry reads from a component that lives in the workers (``stats``, summed over them)."""

    def __init__(self, workers: PipelineWorkers, family: Family, name: str) -> None:
        self._workers = workers
        self._family = family
        self._name = name

    @property
    def stats(self) -> dict[str, Any]:
        """The component's stats, summed over the workers."""
        return dict(self._workers.stats().get(self._family, {}).get(self._name, {}))


# ---------------------------------------------------------------------------------------------------------------------
# The worker process


class _WorkerTelemetry:
    """A worker's telemetry for its processors: the components they track (answered to ``stats`` requests) and the
    tail sampler's decisions, which every answer to the collector carries and resets. Other metric sources
    (``add_source``) are not reported from workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, bool, bool]] = Counter()
        self.tracked: dict[Family, dict[str, HasStats]] = {}

    def track(self, family: Family, name: str, component: HasStats) -> None:
        """Answer ``component``'s stats to the collector's ``stats`` requests."""
        self.tracked.setdefault(family, {})[name] = component

    def add_source(self, source: Any) -> None:
        """Ignored: only tracked components and decisions are reported from a worker."""

    def decided(self, decision: Any) -> None:
        """Count one decision."""
        with self._lock:
            self._counts[(decision.tier, bool(decision.keep), bool(decision.early))] += 1

    def take(self) -> dict[tuple[str, bool, bool], int]:
        """The counts since the last call."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return dict(counts)

    def stats(self) -> dict[str, Any]:
        """The tracked components' stats by family and name."""
        return {family: {name: c.stats for name, c in named.items()} for family, named in self.tracked.items()}


class _ToCollector:
    """The worker's last consumer: sends kept traces to the collector process and raises what it answers."""

    def __init__(self, output: Any, tally: _WorkerTelemetry) -> None:
        self._output = output
        self._tally = tally
        self._lock = threading.Lock()

    def consume(self, batch: TraceBatch) -> None:
        """Send the batch; raise :class:`Backpressure` when the exporters are full."""
        data = _batch_bytes(batch)
        with self._lock:
            self._output.send(("kept", data, self._tally.take(), batch.span_count))
            answer = self._output.recv()
        if answer[0] == "backpressure":
            remaining = TraceBatch.from_bytes(answer[3]) if answer[3] is not None else None
            raise Backpressure(answer[1], answer[2], remaining)
        if answer[0] == "error":
            raise RuntimeError(f"the collector could not export: {answer[1]}")


def worker_main(
    config: CollectorConfig, pipeline: str, index: int, requests: Any, output: Any, log_level: int = logging.INFO
) -> None:
    """A worker process: build the pipeline's processors, then serve the collector's requests until told to stop."""
    # The collector process decides when workers stop (it forwards SIGTERM as a shutdown request).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from spanguard._logging import configure_logging

    configure_logging(logging.getLevelName(log_level), config.telemetry.logs_encoding)
    tally = _WorkerTelemetry()
    try:
        from spanguard.collector.service import build_chain

        last = _ToCollector(output, tally)
        built = build_chain(config, config.pipelines[pipeline], last, tally, in_workers=True)
        for stage in built.stages:
            stage.start()
    except Exception as error:
        requests.send(("failed", f"{type(error).__name__}: {error}"))
        return
    requests.send(("ready", {family: list(named) for family, named in tally.tracked.items()}))
    while True:
        try:
            message = requests.recv()
        except (OSError, EOFError):
            # The collector is gone: nothing can be delivered any more.
            return
        kind = message[0]
        if kind == "consume":
            try:
                built.entry.consume(TraceBatch(_decode(message[1])))
                requests.send(("ok", tally.take()))
            except Backpressure as error:
                requests.send(("backpressure", error.reason, error.retry_after, tally.take()))
            except Exception as error:
                logger.error("worker %d: processing a batch failed (%s)", index, type(error).__name__)
                requests.send(("error", type(error).__name__, tally.take()))
        elif kind == "stats":
            requests.send(("stats", tally.stats(), tally.take()))
        elif kind == "shutdown":
            deadline = time.monotonic() + float(message[1])
            for stage in built.stages:
                try:
                    stage.shutdown(max(0.0, deadline - time.monotonic()))
                except Exception:
                    logger.exception("worker %d: a stage failed to shut down", index)
            requests.send(("done", tally.take()))
            return
