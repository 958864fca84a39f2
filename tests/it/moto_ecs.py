"""moto's server, with the parts of an ECS task that moto does not model filled in.

Imported (it patches moto on import) by tests/it/moto_like.py, which every
server of tests/it/moto.rs loads; by hand,
`python3 tests/it/moto_ecs.py -H 127.0.0.1 -p PORT` runs this alone. Everything
else (clusters, task definitions, RunTask, DescribeTasks, StopTask, the task's
status machine driven by /moto-api/state-manager, CloudWatch Logs) is moto's own.

What moto lacks, and what this adds:

- moto writes a container's `cpu` and `memory` as numbers where ECS writes
  strings; the Rust SDK cannot parse such a task at all. Here they are strings.
- moto lists only the task definition's first container in a task, always with
  exit code 0. Here a task has one container per definition, and a container
  reports its exit code only once the task is STOPPED, as ECS does.
- moto has no way to make a container fail or a task fail to start. Here the test
  says so in the container definition's docker labels:
    moto.exit-code       exit code at STOPPED ("none": no exit code); default 0
    moto.reason          the container's `reason` at STOPPED
    moto.stop-code       the task's `stopCode` at STOPPED
    moto.stopped-reason  the task's `stoppedReason` at STOPPED
  A StopTask call wins over the labels: stopCode UserInitiated, its reason.
- moto's RunTask never returns `failures`. Here a task that fits on no container
  instance comes back as a failure per instance (`RESOURCE:CPU` or
  `RESOURCE:MEMORY`), with no task.
- moto advances a task's status while it serializes the response, after the
  containers were written; here RunTask and DescribeTasks apply the transition
  first, so a response is consistent (STOPPED together with the exit codes).

With `MOTO_LIKE`'s `"ecs"` key (see moto_like.py), a task follows ECS's own
timeline instead of moto's state manager, in seconds from RunTask:

    "ecs": {"missing": 60, "provisioning": 1, "pending": 1, "running": 2,
            "deprovisioning": 45}

- `missing`: DescribeTasks answers the task as a failure `MISSING` (eventual
  consistency) until then; the task itself goes on meanwhile.
- PROVISIONING for `provisioning`, then PENDING for `pending`, then RUNNING.
- Each container runs for `running` (its label `moto.runs` overrides; absent:
  until StopTask), then is STOPPED with its exit code (label `moto.exit-code`),
  while the task may still be RUNNING (a sidecar) or DEPROVISIONING.
- Once every container stopped, the task is DEPROVISIONING for `deprovisioning`,
  then STOPPED. An essential container's exit sets desiredStatus STOPPED and stop
  code EssentialContainerExited (or the labels').
- StopTask stops every container still running at once (exit code 143, as after
  SIGTERM; none for a container that never ran), then deprovisioning as above.
  While the task is MISSING, StopTask fails as DescribeTasks does (task not found).
- RunTask without a launch type (the cluster's default capacity provider
  strategy, or `capacityProviderStrategy`) runs the task as Fargate, where moto
  would look for container instances; the strategy's first provider shows as the
  task's `capacityProviderName`, which moto leaves out.
"""

import json
import os
import sys
import time
import uuid

from moto.ecs import models, responses
from moto.ecs.exceptions import InvalidParameterException
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.server import main

Task = models.Task

TIMELINE = json.loads(os.environ.get("MOTO_LIKE") or "{}").get("ecs")


def _seconds(value):
    return None if value is None else float(value)


class Timeline:
    """When each phase of one task begins, in `time.monotonic()` seconds."""

    def __init__(self, config, containers):
        self.t0 = time.monotonic()
        self.visible = self.t0 + float(config.get("missing", 0))
        self.running = (
            self.t0 + float(config.get("provisioning", 0)) + float(config.get("pending", 0))
        )
        self.provisioned = self.t0 + float(config.get("provisioning", 0))
        self.deprovisioning = float(config.get("deprovisioning", 0))
        self.stop_task = None
        default = _seconds(config.get("running"))
        self.runs = []
        for c in containers:
            label = (c.get("dockerLabels") or {}).get("moto.runs")
            self.runs.append(_seconds(label) if label is not None else default)

    def container_end(self, i):
        """When container `i` stops (its own end or StopTask); `None`: not yet known."""
        own = None if self.runs[i] is None else self.running + self.runs[i]
        if self.stop_task is not None and (own is None or self.stop_task < own):
            return self.stop_task
        return own

    def stopped_by_task_stop(self, i):
        end = self.container_end(i)
        return self.stop_task is not None and end == self.stop_task

    def ran(self, i):
        end = self.container_end(i)
        return end is not None and end > self.running

    def all_stopped(self):
        ends = [self.container_end(i) for i in range(len(self.runs))]
        return None if any(e is None for e in ends) else max(ends, default=self.t0)

    def status(self, now):
        done = self.all_stopped()
        if done is not None and now >= done:
            return "STOPPED" if now >= done + self.deprovisioning else "DEPROVISIONING"
        if now < self.provisioned:
            return "PROVISIONING"
        if now < self.running:
            return "PENDING"
        return "RUNNING"


def _text(value):
    return None if value is None else str(value)


class Container:
    """One container of a task, as DescribeTasks shows it."""

    def __init__(self, task, task_definition, definition):
        self._task = task
        labels = definition.get("dockerLabels") or {}
        self.container_arn = f"{task_definition.arn}/{uuid.uuid4()}"
        self.name = definition.get("name")
        self.image = definition.get("image")
        # Strings, as in the ECS API (moto writes numbers, which the Rust SDK
        # refuses to parse).
        self.cpu = _text(definition.get("cpu"))
        self.memory = _text(definition.get("memory"))
        self.essential = definition.get("essential", True)
        self.network_interfaces = []
        self._exit_code = labels.get("moto.exit-code", "0")
        self._reason = labels.get("moto.reason")
        self._index = len(task.containers) if hasattr(task, "containers") else 0

    def _timeline(self):
        return getattr(self._task, "_timeline", None)

    def _ended(self):
        """On a timeline: whether this container has stopped by now."""
        end = self._timeline().container_end(self._index)
        return end is not None and time.monotonic() >= end

    @property
    def task_arn(self):
        return self._task.task_arn

    def _stopped(self):
        return self._task._status == "STOPPED"

    @property
    def last_status(self):
        line = self._timeline()
        if line is None:
            return "STOPPED" if self._stopped() else "RUNNING"
        if self._ended():
            return "STOPPED"
        return "RUNNING" if time.monotonic() >= line.running else "PENDING"

    @property
    def exit_code(self):
        line = self._timeline()
        if line is not None:
            if not self._ended() or not line.ran(self._index):
                return None
            if line.stopped_by_task_stop(self._index):
                return 143
        elif not self._stopped():
            return None
        if self._exit_code == "none":
            return None
        return int(self._exit_code)

    @property
    def reason(self):
        line = self._timeline()
        stopped = self._ended() if line is not None else self._stopped()
        return self._reason if stopped else None


def _label(task, name):
    for c in task.task_definition_containers:
        value = (c.get("dockerLabels") or {}).get(name)
        if value is not None:
            return value
    return None


original_init = Task.__init__


def task_init(self, cluster, task_definition, *args, **kwargs):
    original_init(self, cluster, task_definition, *args, **kwargs)
    self.task_definition_containers = task_definition.container_definitions
    if TIMELINE is not None:
        self._timeline = Timeline(TIMELINE, task_definition.container_definitions)
    self.containers = []
    for d in task_definition.container_definitions:
        self.containers.append(Container(self, task_definition, d))


def _essential_ended(self):
    """On a timeline: whether an essential container has stopped by now."""
    for c in self.containers:
        if c.essential and c._ended():
            return True
    return False


def get_status(self):
    line = getattr(self, "_timeline", None)
    if line is None:
        return ManagedState.status.fget(self)
    return line.status(time.monotonic())


def set_status(self, value):
    ManagedState.status.fset(self, value)


def get_desired_status(self):
    line = getattr(self, "_timeline", None)
    if line is None:
        return self._desired_status
    if line.stop_task is not None or _essential_ended(self):
        return "STOPPED"
    return "RUNNING"


def set_desired_status(self, value):
    self._desired_status = value


def advance(self):
    self._tick += 1
    # Reading the status applies the transition now, before serialization.
    _ = self.status


def get_stopped_reason(self):
    if self._stopped_reason:
        return self._stopped_reason
    if getattr(self, "_timeline", None) is not None:
        if _essential_ended(self):
            return _label(self, "moto.stopped-reason") or "Essential container in task exited"
        return ""
    if self._status == "STOPPED":
        return _label(self, "moto.stopped-reason") or ""
    return ""


def set_stopped_reason(self, value):
    self._stopped_reason = value


def get_stop_code(self):
    line = getattr(self, "_timeline", None)
    if line is not None:
        if line.stop_task is not None:
            return "UserInitiated"
        if _essential_ended(self):
            return _label(self, "moto.stop-code") or "EssentialContainerExited"
        return None
    if self._status != "STOPPED":
        return None
    if self._stopped_reason:
        return "UserInitiated"
    return _label(self, "moto.stop-code")


Task.__init__ = task_init
Task.advance = advance
Task.stopped_reason = property(get_stopped_reason, set_stopped_reason)
Task.stop_code = property(get_stop_code)
Task.status = property(get_status, set_status)
Task.desired_status = property(get_desired_status, set_desired_status)


original_stop_task = models.EC2ContainerServiceBackend.stop_task


def stop_task(self, cluster_str, task_str, reason):
    """On a timeline the task stops over time (see the module's docstring)."""
    cluster = self._get_cluster(cluster_str)
    task_id = task_str.split("/")[-1]
    for arn, task in self.tasks.get(cluster.name, {}).items():
        line = getattr(task, "_timeline", None)
        if arn.endswith(task_id) and line is not None:
            if time.monotonic() < line.visible:
                # Eventual consistency holds for StopTask too.
                raise InvalidParameterException("The referenced task was not found.")
            if line.stop_task is None:
                line.stop_task = time.monotonic()
                task.stopped_reason = reason
            return task
    return original_stop_task(self, cluster_str, task_str, reason)


models.EC2ContainerServiceBackend.stop_task = stop_task


original_describe_tasks = responses.EC2ContainerServiceResponse.describe_tasks


def describe_tasks(self):
    """On a timeline, a task is MISSING until it becomes visible."""
    result = original_describe_tasks(self)
    now = time.monotonic()
    visible, missing = [], []
    for task in result.result["tasks"]:
        line = getattr(task, "_timeline", None)
        if line is not None and now < line.visible:
            missing.append({"arn": task.task_arn, "reason": "MISSING"})
        else:
            visible.append(task)
    result.result["tasks"] = visible
    result.result["failures"] = list(result.result.get("failures") or []) + missing
    return result


responses.EC2ContainerServiceResponse.describe_tasks = describe_tasks


original_run_task = responses.EC2ContainerServiceResponse.run_task


def run_task(self):
    strategy = self._get_param("capacityProviderStrategy") or []
    if not self._get_param("launchType"):
        # The cluster's default strategy, or the one given: Fargate here (moto
        # would look for container instances).
        get_param = self._get_param

        def fargate(name, *args, **kwargs):
            if name == "launchType":
                return "FARGATE"
            return get_param(name, *args, **kwargs)

        self._get_param = fargate
    result = original_run_task(self)
    for task in result.result["tasks"]:
        # As in DescribeTasks: the status first, then the containers.
        _ = task.status
        # moto ignores the strategy; ECS names the provider the task runs on.
        if strategy:
            task.capacity_provider_name = strategy[0].get("capacityProvider")
    if result.result["tasks"]:
        return result
    launch_type = self._get_param("launchType")
    if launch_type == "FARGATE":
        return result
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    definition = backend.describe_task_definition(self._get_param("taskDefinition"))
    needs = backend._calculate_task_resource_requirements(definition)
    failures = []
    for instance in backend.container_instances.get(cluster.name, {}).values():
        remaining = {r["name"]: r.get("integerValue", 0) for r in instance.remaining_resources}
        reason = "RESOURCE:CPU" if needs["CPU"] > remaining["CPU"] else "RESOURCE:MEMORY"
        failures.append({"arn": instance.container_instance_arn, "reason": reason})
    result.result["failures"] = failures
    return result


responses.EC2ContainerServiceResponse.run_task = run_task

if __name__ == "__main__":
    main(sys.argv[1:])
