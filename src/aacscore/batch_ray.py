"""Batch scoring on Ray (``aacscore score --engine ray``): the cases of a batch scored by Ray
actors, each holding one :class:`~aacscore.pipeline.Scorer` (its models loaded once per actor).

Only who scores a case changes: the batch (:func:`aacscore.batch.score_batch`) plans, resumes,
writes every ``results.csv`` row and the run record in the driver, as each result comes back, so
the output folder is the same as with the local engine. An actor writes its case's JSON, overlay
and DICOM files itself, so the inputs and the output folder must lie on a file system that every
node of the cluster sees at the same path (as on a Slurm cluster).

Failures. A case that raises is a ``failed`` row with its error code, as in the local engine.
An actor that dies (killed for memory, a crash in native code) loses the case it was scoring,
which is run once more on a fresh actor; if that one dies too, the case is a ``worker_failed``
row. The cases queued behind it on the dead actor are sent again without counting an attempt.

Ray is an optional dependency (``pip install 'aacscore[ray]'``), imported only when this engine
runs a batch.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aacscore.batch import (
    BatchOptionError,
    CaseJob,
    CaseTask,
    cpu_cores,
    parse_jobs,
    worker_failed,
)
from aacscore.pipeline import Scorer
from aacscore.results import Result

log = logging.getLogger(__name__)

TASKS_PER_ACTOR = 2
"""Cases sent to an actor at a time (one scoring, one waiting: no idle gap between cases)."""
ATTEMPTS = 2
"""Times a case is run before an actor dying on it makes it ``worker_failed``."""
ADDRESS_AUTO = "auto"
_HOST_PORT = re.compile(r"^(ray://)?[A-Za-z0-9_.\-\[\]:]+:(\d{1,5})$")


def require_ray() -> None:
    """Raises:
    BatchOptionError: Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise BatchOptionError(
            "--engine ray: Ray is not installed; install it with pip install 'aacscore[ray]'"
        )


def parse_address(address: str | None) -> str | None:
    """The Ray cluster to join: None (start a local instance), ``auto`` (the cluster this
    machine is part of, e.g. started with ``ray start``) or ``[ray://]HOST:PORT``.

    Raises:
        BatchOptionError: anything else."""
    if address is None or not address.strip():
        return None
    text = address.strip()
    if text.lower() == ADDRESS_AUTO:
        return ADDRESS_AUTO
    m = _HOST_PORT.match(text)
    if m is None or not 0 < int(m.group(2)) < 65536:
        raise BatchOptionError(
            f"--address: {address!r} is not a Ray cluster address: give auto or HOST:PORT"
        )
    return text


class _ScorerActor:
    """What each Ray actor runs: one :class:`Scorer` (models loaded on its first case, then
    kept) scoring the cases sent to it."""

    def __init__(self, job: CaseJob, threads: int) -> None:
        from aacscore.backend import set_threads

        set_threads(threads)
        self.job = job
        self.scorer = Scorer(**job.scorer_kwargs)

    def score(self, task: CaseTask) -> Result:
        return self.job.score(self.scorer, task)


@dataclass
class _Slot:
    """One actor and the cases sent to it, oldest (the one being scored) first."""

    actor: Any
    sent: deque[tuple[Any, CaseTask]] = field(default_factory=deque)
    again: deque[CaseTask] = field(default_factory=deque)
    """Cases to run first (the case a dead predecessor was scoring)."""


@dataclass(frozen=True)
class RayEngine:
    """Score the cases of a batch on Ray actors (see the module docstring).

    ``address``: see :func:`parse_address` (None: a local instance of this machine's cores,
    on 127.0.0.1, stopped at the end). When this process is already connected to Ray
    (``ray.init`` called before), that connection is used and left open. The number of actors
    is ``job.jobs``, or with ``auto`` the cluster's CPUs // ``num_cpus_per_worker`` (and GPUs
    // ``num_gpus_per_worker``), at most one per case. Each actor reserves
    ``num_cpus_per_worker`` CPUs (its network threads) and ``num_gpus_per_worker`` GPUs (Ray
    sets ``CUDA_VISIBLE_DEVICES`` for it; the ONNX backend runs on CPU)."""

    address: str | None = None
    num_cpus_per_worker: float = 1.0
    num_gpus_per_worker: float = 0.0
    init_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """More arguments of ``ray.init`` for the instance this engine starts."""
    name: str = "ray"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.num_cpus_per_worker) and self.num_cpus_per_worker > 0):
            raise BatchOptionError(
                f"--num-cpus-per-worker: {self.num_cpus_per_worker} CPUs: give more than 0"
            )
        if not (math.isfinite(self.num_gpus_per_worker) and self.num_gpus_per_worker >= 0):
            raise BatchOptionError(
                f"--num-gpus-per-worker: {self.num_gpus_per_worker} GPUs: give 0 or more"
            )
        object.__setattr__(self, "address", parse_address(self.address))

    @property
    def threads(self) -> int:
        """Network threads per actor: its CPUs, at least 1."""
        return max(1, int(self.num_cpus_per_worker))

    def run(
        self,
        tasks: Sequence[CaseTask],
        job: CaseJob,
        scorer: Scorer,
        start: Callable[[CaseTask], None],
        done: Callable[[CaseTask, Result], None],
    ) -> dict[str, Any]:
        """See :meth:`aacscore.batch.Engine.run`.

        Raises:
            BatchOptionError: Ray is missing, the cluster cannot be reached, it has too few
                CPUs or GPUs for one actor (or for ``job.jobs`` actors), or the models cannot
                be sent to the actors."""
        info: dict[str, Any] = {
            "processes": 0,
            "threads": self.threads,
            "worker_restarts": 0,
            "ray": {
                "address": self.address or "local",
                "actors": 0,
                "num_cpus_per_worker": self.num_cpus_per_worker,
                "num_gpus_per_worker": self.num_gpus_per_worker,
            },
        }
        if not tasks:
            return info
        require_ray()
        import ray

        own = not ray.is_initialized()
        if own:
            self._connect(ray)
        try:
            resources = ray.cluster_resources()
            n = self._actors(job.jobs, len(tasks), resources)
            info["ray"].update(
                version=ray.__version__,
                actors=n,
                cluster_cpus=resources.get("CPU", 0.0),
                cluster_gpus=resources.get("GPU", 0.0),
            )
            info["processes"] = n
            info["worker_restarts"] = _Dispatch(ray, self, job, n, start, done).run(tasks)
        finally:
            if own:
                ray.shutdown()
        return info

    def _connect(self, ray: Any) -> None:
        args: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
        if self.address is None:
            args.update(num_cpus=cpu_cores(), include_dashboard=False, _node_ip_address="127.0.0.1")
            args.update(self.init_kwargs)
        else:
            args["address"] = self.address
        try:
            ray.init(**args)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = self.address or "a local instance"
            raise BatchOptionError(f"--address: cannot start or join Ray ({where}): {e}") from None

    def _actors(self, jobs: int | str, n_cases: int, resources: Mapping[str, float]) -> int:
        """How many actors to start (see the class docstring)."""
        cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        fit = int(cpus // self.num_cpus_per_worker)
        if self.num_gpus_per_worker > 0:
            fit = min(fit, int(gpus // self.num_gpus_per_worker))
        if fit < 1:
            raise BatchOptionError(
                f"--num-cpus-per-worker/--num-gpus-per-worker: one actor needs "
                f"{self.num_cpus_per_worker:g} CPU(s) and {self.num_gpus_per_worker:g} GPU(s); the "
                f"Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s)"
            )
        asked = parse_jobs(jobs)
        if asked is not None and asked > fit:
            raise BatchOptionError(
                f"--jobs: {asked} actors of {self.num_cpus_per_worker:g} CPU(s) and "
                f"{self.num_gpus_per_worker:g} GPU(s) do not fit in the Ray cluster "
                f"({cpus:g} CPU(s), {gpus:g} GPU(s)); at most {fit}"
            )
        return max(1, min(asked or fit, n_cases))


class _Dispatch:
    """Sends the cases to the actors and hands each result to ``done`` as it comes back."""

    def __init__(
        self,
        ray: Any,
        engine: RayEngine,
        job: CaseJob,
        n_actors: int,
        start: Callable[[CaseTask], None],
        done: Callable[[CaseTask, Result], None],
    ) -> None:
        self.ray = ray
        self.job = job
        self.start = start
        self.done = done
        self.actor_class = ray.remote(
            num_cpus=engine.num_cpus_per_worker,
            num_gpus=engine.num_gpus_per_worker,
            max_restarts=0,
            max_task_retries=0,
        )(_ScorerActor)
        self.threads = engine.threads
        self.n_actors = n_actors
        self.queue: deque[CaseTask] = deque()
        self.attempts: dict[int, int] = {}
        self.started: set[int] = set()
        self.pending: dict[Any, _Slot] = {}
        self.restarts = 0

    def _new_actor(self) -> Any:
        try:
            return self.actor_class.remote(self.job, self.threads)
        except Exception as e:  # pickling the models (or the options) failed
            raise BatchOptionError(
                f"--engine ray: the models cannot be sent to Ray actors: {type(e).__name__}: {e}"
            ) from None

    def run(self, tasks: Sequence[CaseTask]) -> int:
        """Score every task; returns how many actors were replaced after dying."""
        self.queue.extend(tasks)
        slots = [_Slot(self._new_actor()) for _ in range(self.n_actors)]
        try:
            while self.queue or self.pending or any(s.again for s in slots):
                for slot in slots:
                    self._fill(slot)
                if not self.pending:
                    continue
                (ref,), _ = self.ray.wait(list(self.pending), num_returns=1)
                self._collect(ref)
        finally:
            for slot in slots:
                self._kill(slot.actor)
        return self.restarts

    def _fill(self, slot: _Slot) -> None:
        while len(slot.sent) < TASKS_PER_ACTOR and (slot.again or self.queue):
            task = slot.again.popleft() if slot.again else self.queue.popleft()
            if task.index not in self.started:
                self.started.add(task.index)
                self.start(task)
            try:
                ref = slot.actor.score.remote(task)
            except Exception as e:  # the input cannot be sent (pickling failed)
                problem = f"{type(e).__name__}: {e}"
                self.done(task, worker_failed(task, self.job.out_dir, problem))
                continue
            slot.sent.append((ref, task))
            self.pending[ref] = slot

    def _collect(self, ref: Any) -> None:
        from ray.exceptions import RayActorError

        slot = self.pending[ref]
        try:
            res = self.ray.get(ref)
        except RayActorError as e:
            self._actor_died(slot, e)
            return
        except Exception as e:  # the result could not come back
            task = self._forget(slot, ref)
            problem = f"{type(e).__name__}: {_first_line(e)}"
            self.done(task, worker_failed(task, self.job.out_dir, problem))
            return
        self.done(self._forget(slot, ref), res)

    def _forget(self, slot: _Slot, ref: Any) -> CaseTask:
        del self.pending[ref]
        for k, (r, task) in enumerate(slot.sent):
            if r is ref:
                del slot.sent[k]
                return task
        raise KeyError(ref)  # pragma: no cover - every pending ref is in its slot

    def _actor_died(self, slot: _Slot, error: Exception) -> None:
        """The actor of ``slot`` died: the results it finished are kept, the case it was scoring
        is run again on a fresh actor (or fails, the second time), the others are queued again."""
        from ray.exceptions import GetTimeoutError, RayActorError

        sent = list(slot.sent)
        slot.sent.clear()
        for ref, _ in sent:
            del self.pending[ref]
        self._kill(slot.actor)
        slot.actor = self._new_actor()
        self.restarts += 1
        blamed = False
        requeue: list[CaseTask] = []
        for ref, task in sent:
            if blamed:
                requeue.append(task)
                continue
            try:
                res = self.ray.get(ref, timeout=0)
            except (RayActorError, GetTimeoutError):
                blamed = True
            except Exception as e:  # the result could not come back
                self.done(task, worker_failed(task, self.job.out_dir, f"{type(e).__name__}: {e}"))
                continue
            else:
                self.done(task, res)
                continue
            self.attempts[task.index] = self.attempts.get(task.index, 0) + 1
            if self.attempts[task.index] < ATTEMPTS:
                log.warning("%s: the Ray actor scoring it died; running it again", task.item.name)
                slot.again.append(task)
            else:
                log.warning("%s: the Ray actor scoring it died again", task.item.name)
                problem = (
                    f"the Ray actor's process died while scoring this film, {ATTEMPTS} times "
                    f"(killed or crashed): {_first_line(error)}"
                )
                self.done(task, worker_failed(task, self.job.out_dir, problem))
        self.queue.extendleft(reversed(requeue))

    def _kill(self, actor: Any) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception as e:  # already gone
            log.debug("ray.kill: %s", e)


def _first_line(error: BaseException, limit: int = 300) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:limit]
