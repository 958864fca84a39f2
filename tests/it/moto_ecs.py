"""moto's server, with the parts of an ECS task that moto does not model filled in.

Imported (it patches moto on import) by the launcher in tests/it/moto.rs for
`Moto::start_ecs`, which then runs moto's server; by hand,
`python3 tests/it/moto_ecs.py -H 127.0.0.1 -p PORT` does the same. Everything
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
"""

import sys
import uuid

from moto.ecs import models, responses
from moto.server import main

Task = models.Task


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

    @property
    def task_arn(self):
        return self._task.task_arn

    def _stopped(self):
        return self._task._status == "STOPPED"

    @property
    def last_status(self):
        return "STOPPED" if self._stopped() else "RUNNING"

    @property
    def exit_code(self):
        if not self._stopped() or self._exit_code == "none":
            return None
        return int(self._exit_code)

    @property
    def reason(self):
        return self._reason if self._stopped() else None


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
    self.containers = [
        Container(self, task_definition, d) for d in task_definition.container_definitions
    ]


def advance(self):
    self._tick += 1
    # Reading the status applies the transition now, before serialization.
    _ = self.status


def get_stopped_reason(self):
    if self._stopped_reason:
        return self._stopped_reason
    if self._status == "STOPPED":
        return _label(self, "moto.stopped-reason") or ""
    return ""


def set_stopped_reason(self, value):
    self._stopped_reason = value


def get_stop_code(self):
    if self._status != "STOPPED":
        return None
    if self._stopped_reason:
        return "UserInitiated"
    return _label(self, "moto.stop-code")


Task.__init__ = task_init
Task.advance = advance
Task.stopped_reason = property(get_stopped_reason, set_stopped_reason)
Task.stop_code = property(get_stop_code)


original_run_task = responses.EC2ContainerServiceResponse.run_task


def run_task(self):
    result = original_run_task(self)
    for task in result.result["tasks"]:
        # As in DescribeTasks: the status first, then the containers.
        _ = task.status
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
