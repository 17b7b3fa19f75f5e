"""Pods of a job: which ranks and spares exist, where they go, how they are made and removed.

Node ranks are assigned in the order of ``replicaSpecs`` (group 0 takes ranks 0..n0-1, ...), as
HyperPod does; each group's ``spares`` become spare pods, agents that boot and wait so a node
fault is remediated by promoting one instead of booting a new pod. Pods are named
``<job>-<group>-<n>`` with ``n`` counting up over the job's life, and carry the labels
``HPJob=<job>`` and the restart attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from trainguard import constants as c
from trainguard.backends.base import Backend, PodLaunch
from trainguard.controller.context import JobContext, PodView
from trainguard.policy.placement import NodeView, Slot, Unschedulable, place
from trainguard.spec.job import ReplicaSpec
from trainguard.store.base import Store
from trainguard.store.records import PodRecord

DEFAULT_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class PodPlan:
    """One pod to create: its rank (None for a spare) and the replica group it belongs to."""

    key: str
    group: ReplicaSpec
    node_rank: int | None


def rank_plans(
    ctx: JobContext, ranks: Iterable[int] | None = None, *, size: int | None = None
) -> list[PodPlan]:
    """Plans for the given node ranks (all ranks when None).

    An elastic job has one replica group and `JobContext.size` ranks of it (``size`` ranks
    when given: the plans of a size it might grow to).
    """
    spec = ctx.job.spec
    size = size or ctx.state.size
    if size is not None:
        groups = [spec.replica_specs[0]] * size
    else:
        groups = [group for group in spec.replica_specs for _ in range(group.replicas)]
    wanted = None if ranks is None else set(ranks)
    return [
        PodPlan(f"rank-{rank}", group, rank)
        for rank, group in enumerate(groups)
        if wanted is None or rank in wanted
    ]


def spare_plans(ctx: JobContext, *, existing: int) -> list[PodPlan]:
    """Plans for the spare pods the job lacks, given ``existing`` live spares."""
    wanted = [group for group in ctx.job.spec.replica_specs for _ in range(group.spares)]
    return [
        PodPlan(f"spare-{i}", group, None)
        for i, group in enumerate(wanted[existing:], start=existing)
    ]


def node_views(ctx: JobContext, occupied: set[str]) -> list[NodeView]:
    """Nodes as placement sees them; ``occupied`` names nodes hosting any job's pod."""
    return [NodeView(n.name, n.labels, n.name in occupied) for n in ctx.nodes.values()]


def plan_placement(
    ctx: JobContext, plans: list[PodPlan], occupied: set[str]
) -> dict[str, str] | Unschedulable:
    """Assign nodes to ``plans`` (ranks keep their previous node when it is still fit)."""
    slots = [
        Slot(
            plan.key,
            node_selector={
                **(plan.group.template.spec.node_selector or {}),
                **ctx.admission.node_selector,
            },
            affinity=plan.group.template.spec.affinity,
            previous_node=ctx.state.placement.get(str(plan.node_rank)),
        )
        for plan in plans
    ]
    return place(slots, node_views(ctx, occupied), avoid=frozenset(ctx.state.avoid))


class PodMaker:
    """Creates and deletes a job's pods through the backend; their rows go with the step.

    The processes start and stop at once (the backend's effects cannot be rolled back); the
    pod rows join the step's `StepWrite`, so they land with the job's status or not at all.
    A refused write is followed by `Reconciler` deleting the pods launched in the step, so no
    process outlives the row that would have tracked it.

    Args:
        store: the cluster's store.
        backend: where pods run.
        guard: called right before a pod process is started or killed; raises when this
            controller may no longer act (it lost its lease), so no process is touched.
    """

    def __init__(
        self, *, store: Store, backend: Backend, guard: Callable[[], None] | None = None
    ) -> None:
        self.store, self.backend = store, backend
        self.guard = guard or (lambda: None)

    def occupied_nodes(self, ctx: JobContext) -> set[str]:
        """Nodes that host a pod of any job (with ``ctx``'s step's pods, not yet written)."""
        removed = set(ctx.write.removed_pods)
        stored = {p.node for p in self.store.list_pods() if (p.namespace, p.name) not in removed}
        return stored | {pod.record.node for pod in ctx.pods}

    def create(self, ctx: JobContext, plan: PodPlan, node: str) -> PodRecord:
        """Create one pod from ``plan`` on ``node`` and store it."""
        ctx.state.pod_counter += 1
        name = f"{ctx.name}-{plan.group.name}-{ctx.state.pod_counter - 1}"
        labels = {
            c.LABEL_JOB: ctx.name,
            c.LABEL_RESTART_ATTEMPT: str(ctx.state.attempt),
            c.LABEL_REPLICA_SPEC: plan.group.name,
        }
        if plan.node_rank is not None:
            labels[c.LABEL_NODE_RANK] = str(plan.node_rank)
            ctx.state.placement[str(plan.node_rank)] = node
        template_labels = (
            (plan.group.template.metadata.labels or {}) if plan.group.template.metadata else {}
        )
        launch = PodLaunch(
            namespace=ctx.namespace,
            job=ctx.name,
            job_uid=ctx.record.uid,
            pod=name,
            node=node,
            replica_spec=plan.group.name,
            node_rank=plan.node_rank,
            spare=plan.node_rank is None,
            attempt=ctx.state.attempt,
            container=plan.group.template.spec.containers[0],
            nproc_per_node=ctx.job.spec.nproc_per_node,
            nnodes=ctx.size,
            token=ctx.state.token,
            source_dir=ctx.record.source_dir,
            labels={**template_labels, **labels},
            template=plan.group.template,
            avoid=tuple(ctx.state.avoid),
            node_selector=dict(ctx.admission.node_selector),
            tolerations=tuple(ctx.admission.tolerations),
        )
        self.guard()
        pod = self.backend.create_pod(launch, now=ctx.now)
        ctx.write.launched.append(pod)
        ctx.write.save_pod(pod)
        ctx.pods.append(PodView(pod, alive=True))
        return pod

    def delete(self, ctx: JobContext, pods: list[PodView]) -> None:
        """Delete pods (in parallel where there are several) and forget them."""
        grace = _grace(ctx)
        if pods:
            self.guard()
        if len(pods) == 1:
            self.backend.delete_pod(pods[0].record, grace=grace)
        elif pods:
            with ThreadPoolExecutor(max_workers=min(16, len(pods))) as pool:
                list(pool.map(lambda p: self.backend.delete_pod(p.record, grace=grace), pods))
        for pod in pods:
            ctx.write.remove_pod(pod.record.namespace, pod.name)
        names = {p.name for p in pods}
        ctx.pods = [p for p in ctx.pods if p.name not in names]


def _grace(ctx: JobContext) -> float:
    seconds = ctx.job.spec.replica_specs[0].template.spec.termination_grace_period_seconds
    return float(seconds) if seconds is not None else DEFAULT_GRACE_SECONDS
