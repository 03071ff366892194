"""Background jobs: produce, ingest and pipelines that run while the notebook
(or script) goes on.

``start_produce``, ``start_ingest`` and ``kafkalake.pipeline.start`` take the
same arguments as their blocking forms and return a :class:`Job` at once.
The work runs in Rust threads with the GIL released; a Python thread per job
only waits for it (twice a second, never per message). A bad argument raises
from the ``start_*`` call itself, before anything runs; an error later in the
run is kept and raised by :meth:`Job.wait` and :attr:`Job.report`, and shown
in :meth:`Job.metrics`, so a job never fails silently.

Ctrl-C (in a terminal) and a notebook's kernel interrupt stop every running
job, as does the process exiting (a kernel restart included): each stops as
its exactly-once design requires, committing or dropping its open batch.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Literal, ParamSpec, TypeVar

from kafkalake.exceptions import IncompleteError, InvalidArgumentError

P = ParamSpec("P")
R = TypeVar("R")

Kind = Literal["produce", "ingest", "pipeline"]

#: Seconds of history the rates in :meth:`Job.metrics` are computed over.
RATE_WINDOW = 5.0
#: Seconds :func:`stop_all` waits for each job when the process exits.
EXIT_TIMEOUT = 60.0

_local = threading.local()
_registry: list[Job[Any]] = []
_registry_lock = threading.Lock()
_hooks_installed = False


class Job(Generic[R]):
    """A produce, ingest or pipeline run in the background.

    Use it as a context manager to stop it when the block ends::

        with kafkalake.start_ingest("telemetry", "lake/bronze", bootstrap_servers=bs,
                                    until="forever") as job:
            ...  # query the table while it fills
            print(job.metrics()["messages_per_second"])
        print(job.report)
    """

    def __init__(self, kind: Kind, name: str, run: Callable[[], R]) -> None:
        self.kind: Kind = kind
        self.name = name
        self._run = run
        self._raw: Any = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._done = threading.Event()
        self._result: R | None = None
        self._error: BaseException | None = None
        self._started = time.monotonic()
        self._finished: float | None = None
        self._samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=64)
        self._extra: dict[str, Any] = {}
        self._thread = threading.Thread(
            target=self._main, name=f"kafkalake-{kind}-{name}", daemon=True
        )

    # --- running -------------------------------------------------------------------

    def _main(self) -> None:
        _local.job = self
        try:
            self._result = self._run()
        except BaseException as e:
            self._error = e
        finally:
            _local.job = None
            self._finished = time.monotonic()
            self._ready.set()
            self._done.set()

    def _attach(self, raw: Any) -> None:
        """The Rust run this job drives now (an ingest's or a producer's)."""
        self._raw = raw
        if self._stop.is_set():
            raw.cancel()
        self._ready.set()

    # --- the user's side -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the job is still running."""
        return not self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the job, if any (``None`` while running)."""
        return self._error if self._done.is_set() else None

    @property
    def report(self) -> R | None:
        """The job's report once it has finished (``None`` while running);
        raises the job's error if it failed."""
        if not self._done.is_set():
            return None
        if self._error is not None:
            raise self._error
        return self._result

    def wait(self, timeout: float | None = None) -> R:
        """Wait for the job to finish and return its report.

        Raises the job's error if it failed, and :class:`TimeoutError` if it
        is still running after ``timeout`` seconds (it keeps running).
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self!r} is still running after {timeout} s")
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def wait_for(self, timeout: float | None = None, **targets: int) -> dict[str, Any]:
        """Wait until the job's counters reach ``targets`` and return its
        :meth:`metrics` then; the job goes on running.

        ``ingest.wait_for(rows=40_000)`` waits for 40,000 rows committed;
        ``ingest.wait_for(commits=1)`` for the first commit (which creates
        a Delta table); ``producer.wait_for(acknowledged=1_000)``;
        ``pipeline.wait_for(cycles=1)``. Counters: for an ingest
        ``messages``, ``rows``, ``dead_letters``, ``commits``, ``files``,
        ``batches``, ``bytes``; for a producer ``sent``, ``acknowledged``,
        ``failed``, ``bytes``; for a pipeline ``cycles``.

        Raises the job's error if it fails meanwhile,
        :class:`~kafkalake.exceptions.IncompleteError` if it finishes short
        of a target, and :class:`TimeoutError` (naming what is behind) if a
        target is not reached within ``timeout`` seconds.
        """
        allowed = _COUNTERS[self.kind]
        if not targets:
            raise InvalidArgumentError(
                f"wait_for needs a target, e.g. {allowed[0]}=1000 "
                f"(a {self.kind} job counts {', '.join(allowed)})"
            )
        for key, value in targets.items():
            if key not in allowed:
                raise InvalidArgumentError(
                    f"a {self.kind} job has no counter {key!r}; wait_for takes {', '.join(allowed)}"
                )
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgumentError(
                    f"wait_for's {key} must be a whole number of at least 0, got {value!r}"
                )
        if timeout is not None and not timeout >= 0:
            raise InvalidArgumentError(
                f"timeout must be a number of seconds of at least 0, got {timeout!r}"
            )
        deadline = None if timeout is None else time.monotonic() + timeout

        def behind() -> list[str]:
            now = {**self._counters(), **self._extra}
            return [
                f"{k} {int(now.get(k, 0)):,} of {v:,}"
                for k, v in targets.items()
                if now.get(k, 0) < v
            ]

        while True:
            # Read once the job has ended, so its last counts are judged.
            ended = self._done.is_set()
            short = behind()
            if not short:
                return self.metrics()
            if ended:
                self._thread.join()
                if self._error is not None:
                    raise self._error
                raise IncompleteError(
                    f"{self!r} ended with {'; '.join(short)}: nothing more will come"
                )
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"{self!r} is still short after {timeout} s: {'; '.join(short)}")
            # The counters are the engine's atomics, read as often as this:
            # the job's end wakes the wait at once.
            self._done.wait(_WAIT_STEP if left is None else min(_WAIT_STEP, left))

    def stop(self, timeout: float | None = 60.0) -> R:
        """Stop the job cleanly and return its report.

        An ingest writes what it has read and commits it (or, for Parquet and
        Capture files, leaves the open batch for the next run to read again);
        a producer stops sending and waits for the acknowledgements of what
        it sent; a pipeline stops after its current commit. Raises as
        :meth:`wait` does.
        """
        self._request_stop()
        return self.wait(timeout)

    def _request_stop(self) -> None:
        self._stop.set()
        raw = self._raw
        if raw is not None:
            raw.cancel()

    @property
    def stop_requested(self) -> bool:
        """Whether :meth:`stop` (or an interrupt) asked the job to stop."""
        return self._stop.is_set()

    def metrics(self) -> dict[str, Any]:
        """A snapshot: counts so far, rates over the last few seconds, and
        for an ingest the lag and position per partition and the commit and
        end-to-end latency percentiles.

        Keys for every job: ``kind``, ``name``, ``running``, ``elapsed_seconds``,
        ``error`` (the error's text once it failed, else ``None``).
        Ingest (and a pipeline's current ingest): ``messages``, ``rows``,
        ``bytes``, ``dead_letters``, ``commits``, ``files``,
        ``messages_per_second``, ``rows_per_second``, ``lag`` (total),
        ``partitions`` (a list of dicts: topic, partition, position,
        log_end, lag), ``commit_p50_seconds``, ``commit_p99_seconds``,
        ``end_to_end_p50_seconds``, ``end_to_end_p99_seconds``.
        Produce: ``sent``, ``acknowledged``, ``failed``, ``bytes``,
        ``sent_per_second``, ``acknowledged_per_second``.
        Pipeline: ``cycles``, ``entry`` (the entry running now) and
        ``stages`` (the last report line per stage).
        """
        now = time.monotonic()
        end = self._finished or now
        m: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "running": self.running,
            "elapsed_seconds": end - self._started,
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
        }
        counters = self._counters()
        m.update(counters)
        m.update(self._extra)
        numeric = {k: float(v) for k, v in counters.items() if k in _RATED}
        self._samples.append((now, numeric))
        for key, value in numeric.items():
            m[f"{key}_per_second"] = self._rate(key, value, now)
        return m

    def _counters(self) -> dict[str, Any]:
        raw = self._raw
        if raw is None:
            return {}
        if hasattr(raw, "progress"):
            sent, acked, failed, size, _ = raw.progress()
            return {"sent": sent, "acknowledged": acked, "failed": failed, "bytes": size}
        d = dict(raw.metrics())
        parts = d.pop("partitions", [])
        d.pop("lag", None)
        d.pop("elapsed_seconds", None)
        d.pop("interrupted", None)
        d["partitions"] = [
            {
                "topic": t,
                "partition": p,
                "position": pos,
                "log_end": end,
                "lag": max(end - pos, 0),
            }
            for t, p, pos, end in parts
        ]
        d["lag"] = sum(x["lag"] for x in d["partitions"])
        return d

    def _rate(self, key: str, value: float, now: float) -> float:
        """Per second over about the last :data:`RATE_WINDOW` seconds."""
        base: tuple[float, float] | None = None
        for t, sample in self._samples:
            if now - t <= RATE_WINDOW and now - t >= 0.5 and key in sample:
                base = (t, sample[key])
                break
        if base is None:
            elapsed = (self._finished or now) - self._started
            return value / elapsed if elapsed > 0 else 0.0
        return (value - base[1]) / (now - base[0])

    def _sample(self) -> None:
        """Record the counters (the sampler thread, twice a second)."""
        numeric = {k: float(v) for k, v in self._counters().items() if k in _RATED}
        self._samples.append((time.monotonic(), numeric))

    # --- conveniences --------------------------------------------------------------

    def __enter__(self) -> Job[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self._request_stop()
            self._done.wait(EXIT_TIMEOUT)

    def __repr__(self) -> str:
        if self.running:
            state = "stopping" if self._stop.is_set() else "running"
        elif self._error is not None:
            state = f"failed: {type(self._error).__name__}: {self._error}"
        else:
            state = "finished"
        return f"<kafkalake {self.kind} job {self.name!r}: {state}>"


_RATED = frozenset({"messages", "rows", "bytes", "sent", "acknowledged"})

#: What :meth:`Job.wait_for` can wait for, per kind of job.
_COUNTERS: dict[str, tuple[str, ...]] = {
    "ingest": ("rows", "messages", "commits", "dead_letters", "files", "batches", "bytes"),
    "produce": ("acknowledged", "sent", "failed", "bytes"),
    "pipeline": ("cycles",),
}

#: Seconds between two reads of the counters in :meth:`Job.wait_for`.
_WAIT_STEP = 0.05


def current() -> Job[Any] | None:
    """The job whose thread this is (``None`` outside a job)."""
    job: Job[Any] | None = getattr(_local, "job", None)
    return job


def attach(raw: Any) -> None:
    """Called by ``ingest``/``produce`` with their Rust run: a job running them
    can then report its counters and stop it."""
    job = current()
    if job is not None:
        job._attach(raw)


def ready() -> None:
    """Called once a job's arguments are checked (before any work)."""
    job = current()
    if job is not None:
        job._ready.set()


def stopping() -> bool:
    """Whether the current job was asked to stop (``False`` outside a job)."""
    job = current()
    return job is not None and job.stop_requested


def pause(seconds: float) -> bool:
    """Sleep ``seconds``, cut short when the current job is asked to stop;
    returns whether it was."""
    job = current()
    if job is None:
        time.sleep(seconds)
        return False
    return job._stop.wait(seconds)


def note(**fields: Any) -> None:
    """Extra fields for the current job's :meth:`Job.metrics`."""
    job = current()
    if job is not None:
        job._extra.update(fields)


def running() -> list[Job[Any]]:
    """Jobs of this process that are still running."""
    with _registry_lock:
        return [j for j in _registry if j.running]


def stop_all(timeout: float | None = EXIT_TIMEOUT) -> None:
    """Ask every running job to stop, then wait up to ``timeout`` s for each."""
    jobs = running()
    for j in jobs:
        j._request_stop()
    for j in jobs:
        j._done.wait(timeout)


def start(kind: Kind, name: str, run: Callable[[], R]) -> Job[R]:
    """Run ``run`` as a job. Returns once its arguments are checked and its
    Rust run started; an error before that point is raised here."""
    _install_hooks()
    job = Job(kind, name, run)
    with _registry_lock:
        _registry[:] = [j for j in _registry if j.running]
        _registry.append(job)
    job._thread.start()
    job._ready.wait()
    if job._done.is_set() and job._error is not None and job._raw is None:
        job._thread.join()
        raise job._error
    _Sampler.ensure()
    return job


def background(kind: Kind, fn: Callable[P, R], name: Callable[..., str]) -> Callable[P, Job[R]]:
    """``fn``'s background form: same arguments, returns a :class:`Job`."""

    @functools.wraps(fn)
    def start_job(*args: P.args, **kwargs: P.kwargs) -> Job[R]:
        kwargs.setdefault("progress", False)
        return start(kind, name(*args, **kwargs), lambda: fn(*args, **kwargs))

    sig = inspect.signature(fn)
    start_job.__signature__ = sig.replace(  # type: ignore[attr-defined]
        return_annotation=f"Job[{sig.return_annotation}]"
    )
    start_job.__name__ = f"start_{fn.__name__}"
    start_job.__qualname__ = start_job.__name__
    start_job.__doc__ = (
        f"Start :func:`{fn.__name__}` in the background and return a :class:`Job`.\n\n"
        f"Takes the same arguments as :func:`{fn.__name__}` (``progress`` defaults "
        "to off). A bad argument raises here, before anything runs; errors "
        "during the run are raised by ``job.wait()`` and ``job.report``."
    )
    return start_job


class _Sampler:
    """One thread that records every running job's counters twice a second,
    so rates cover the last few seconds however often metrics are read."""

    _thread: threading.Thread | None = None
    _lock = threading.Lock()

    @classmethod
    def ensure(cls) -> None:
        with cls._lock:
            if cls._thread is None:
                cls._thread = threading.Thread(
                    target=cls._loop, name="kafkalake-job-sampler", daemon=True
                )
                cls._thread.start()

    @classmethod
    def _loop(cls) -> None:
        while True:
            with cls._lock:
                jobs = running()
                if not jobs:
                    cls._thread = None
                    return
            for j in jobs:
                # A counter read may race the job's end; the next round is fine.
                with contextlib.suppress(Exception):
                    j._sample()
            time.sleep(0.5)


def _install_hooks() -> None:
    """Stop every job on Ctrl-C, a kernel interrupt and process exit."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(stop_all)
    _hook_ipython()
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        for j in running():
            j._request_stop()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, on_sigint)


def _hook_ipython() -> None:
    """In IPython and Jupyter, a cell ended by an interrupt stops every job (the
    kernel swaps SIGINT handlers around each cell, so the signal hook alone
    would not see a kernel interrupt)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def after_cell(result: Any) -> None:
        if isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt):
            for j in running():
                j._request_stop()

    shell.events.register("post_run_cell", after_cell)
