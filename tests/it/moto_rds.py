"""moto's RDS and Route53, made to take their time the way AWS does.

Imported (it patches moto on import) by the harness's launcher, which then runs
moto's server. It reads the behaviour from the JSON in the environment variable
`MOTO_LIKE` and changes nothing for a service whose key is missing there:

"rds": {
    "cluster_creating": S    a new cluster (create, restore) is `creating` for S s
    "instance_creating": S   a new instance (create, restore) is `creating` for S s
    "not_found": S           eventual consistency: Describe* does not find a new
                             cluster or instance for its first S s
    "reset_appears": S       after a new master password (ModifyDBCluster,
                             ModifyDBInstance) the resource stays `available` for
                             S s, with PendingModifiedValues.MasterUserPassword ...
    "reset_takes": S         ... then `resetting-master-credentials` for S s; only
                             then is the new password in effect
    "deleting": S            a deleted cluster or instance is `deleting` for S s
                             (an instance stays a member of its cluster), then gone
    "existing": [ids]        clusters and instances that are there already: no
                             `creating`, no `not_found` (what a test seeds)
    "password_command": argv run when a new password takes effect, with `{user}`
                             and `{password}` replaced: a test points it at the
                             real database standing in for the clone, so that the
                             new password is valid there only from then on
}
"route53": {
    "insync_after": S        ChangeResourceRecordSets answers PENDING; GetChange
                             says INSYNC once S s have passed
}

AWS's documented refusals, kept here: CreateDBInstance in a cluster that is not
`available` fails with InvalidDBClusterStateFault (the RDS API reference: an
instance is added once the restored cluster is available), and so does a
DeleteDBCluster while a member is not `deleting`.

Every event a test may check is one line on stderr (the server's log):
`moto-like {json}` with the wall-clock time `t`: `refused`, `password_applied`,
`change` (with `insync_at`), `delete_cluster`, `delete_instance`.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid

from moto.rds import exceptions as rds_exceptions
from moto.rds import models as rds_models
from moto.route53 import responses as r53_responses

CONFIG = json.loads(os.environ.get("MOTO_LIKE") or "{}")
RDS = CONFIG.get("rds")
ROUTE53 = CONFIG.get("route53")

LOCK = threading.RLock()


def event(name, **fields):
    fields = {"event": name, "t": time.time(), **fields}
    print("moto-like " + json.dumps(fields), file=sys.stderr, flush=True)


def setting(name):
    return float((RDS or {}).get(name, 0))


class Reset:
    """A new master password on its way."""

    def __init__(self, user, password):
        self.at = time.monotonic()
        self.user = user
        self.password = password
        self.applied = False

    def window(self):
        """When `resetting-master-credentials` shows, and when it is done: never
        within the response to the change itself, which shows it pending."""
        appears = self.at + setting("reset_appears")
        return appears, max(appears + setting("reset_takes"), self.at + 0.2)


# (kind, id) -> monotonic time of creation / of the delete request; a reset.
BORN = {}
DELETING = {}
RESETS = {}


def existing(ident):
    return ident in (RDS or {}).get("existing", [])


def apply_password(key, reset):
    """The new password takes effect (once): in the stand-in database too."""
    with LOCK:
        if reset.applied:
            return
        reset.applied = True
    command = (RDS or {}).get("password_command")
    ok = True
    if command:
        argv = [a.replace("{user}", reset.user or "").replace("{password}", reset.password) for a in command]
        done = subprocess.run(argv, capture_output=True, text=True)
        ok = done.returncode == 0
        if not ok:
            print(f"moto-like: password_command failed: {done.stderr}", file=sys.stderr, flush=True)
    event("password_applied", kind=key[0], id=key[1], ok=ok)


def overlay(kind, ident, base, creating):
    """The status AWS would show now, over moto's own."""
    key = (kind, ident)
    now = time.monotonic()
    if key in DELETING:
        return "deleting"
    born = BORN.get(key)
    if born is not None and now < born + creating:
        return "creating"
    reset = RESETS.get(key)
    if reset is not None and not reset.applied:
        appears, done = reset.window()
        if now >= done:
            apply_password(key, reset)
        elif now >= appears:
            return "resetting-master-credentials"
    if base in ("creating", None):
        return "available"
    return base


def hidden(kind, ident):
    born = BORN.get((kind, ident))
    return born is not None and time.monotonic() < born + setting("not_found")


def pending(kind, ident):
    reset = RESETS.get((kind, ident))
    if reset is None or reset.applied:
        return None
    overlay(kind, ident, "available", 0)  # applies it when its time has come
    if reset.applied:
        return None
    return {"MasterUserPassword": "****"}


def purge(backend):
    """Deletions whose time has come are carried out."""
    now = time.monotonic()
    for (kind, ident), since in list(DELETING.items()):
        if now < since + setting("deleting"):
            continue
        del DELETING[(kind, ident)]
        if kind == "cluster":
            backend.clusters.pop(ident, None)
        else:
            backend.databases.pop(ident, None)


def install_rds():
    DBCluster = rds_models.DBCluster
    DBInstance = rds_models.DBInstance
    Backend = rds_models.RDSBackend
    moto_cluster_status = DBCluster.status

    def cluster_status(self):
        base = moto_cluster_status.fget(self)
        return overlay("cluster", self.db_cluster_identifier, base, setting("cluster_creating"))

    DBCluster.status = property(cluster_status, moto_cluster_status.fset)
    DBCluster.pending_modified_values = property(
        lambda self: pending("cluster", self.db_cluster_identifier)
    )

    statuses = {}

    def instance_status(self):
        base = statuses.get(id(self), "available")
        return overlay("instance", self.db_instance_identifier, base, setting("instance_creating"))

    def set_instance_status(self, value):
        statuses[id(self)] = value

    DBInstance.status = property(instance_status, set_instance_status)
    DBInstance.pending_modified_values = property(
        lambda self: pending("instance", self.db_instance_identifier)
    )

    create_cluster = Backend.create_db_cluster

    def create_db_cluster(self, kwargs):
        cluster = create_cluster(self, kwargs)
        if not existing(cluster.db_cluster_identifier):
            BORN[("cluster", cluster.db_cluster_identifier)] = time.monotonic()
        return cluster

    create_instance = Backend.create_db_instance

    def create_db_instance(self, db_kwargs):
        cluster_id = db_kwargs.get("db_cluster_identifier")
        if cluster_id is not None and cluster_id in self.clusters:
            status = self.clusters[cluster_id].status
            if status != "available":
                event("refused", call="CreateDBInstance", cluster=cluster_id, status=status)
                raise rds_exceptions.InvalidDBClusterStateFault(
                    f"DB cluster {cluster_id} is not in the available state (it is {status})."
                )
        database = create_instance(self, db_kwargs)
        if not existing(database.db_instance_identifier):
            BORN[("instance", database.db_instance_identifier)] = time.monotonic()
        return database

    describe_clusters = Backend.describe_db_clusters

    def describe_db_clusters(self, db_cluster_identifier=None, filters=None):
        with LOCK:
            purge(self)
            found = [
                c
                for c in describe_clusters(self, db_cluster_identifier, filters)
                if not hidden("cluster", c.db_cluster_identifier)
            ]
        if db_cluster_identifier and not found:
            raise rds_exceptions.DBClusterNotFoundError(db_cluster_identifier)
        return found

    describe_instances = Backend.describe_db_instances

    def describe_db_instances(self, db_instance_identifier=None, filters=None):
        with LOCK:
            purge(self)
            found = [
                d
                for d in describe_instances(self, db_instance_identifier, filters)
                if not hidden("instance", d.db_instance_identifier)
            ]
        if db_instance_identifier and not found:
            raise rds_exceptions.DBInstanceNotFoundError(db_instance_identifier)
        return found

    modify_cluster = Backend.modify_db_cluster

    def modify_db_cluster(self, kwargs):
        password = kwargs.pop("master_user_password", None)
        ident = kwargs["db_cluster_identifier"]
        if password is not None:
            cluster = self.clusters.get(ident)
            if cluster is None:
                raise rds_exceptions.DBClusterNotFoundError(ident)
            status = cluster.status
            if status != "available":
                event("refused", call="ModifyDBCluster", cluster=ident, status=status)
                raise rds_exceptions.InvalidDBClusterStateFault(
                    f"DB cluster {ident} is not in the available state (it is {status})."
                )
            reset = Reset(cluster.master_username, password)
            RESETS[("cluster", ident)] = reset
            threading.Timer(reset.window()[1] - time.monotonic() + 0.05, lambda: pending("cluster", ident)).start()
        return modify_cluster(self, kwargs)

    modify_instance = Backend.modify_db_instance

    def modify_db_instance(self, db_instance_identifier, db_kwargs):
        password = db_kwargs.pop("master_user_password", None)
        if password is not None:
            database = self.describe_db_instances(db_instance_identifier)[0]
            status = database.status
            if status != "available":
                event("refused", call="ModifyDBInstance", instance=db_instance_identifier, status=status)
                raise rds_exceptions.InvalidDBInstanceStateFault(
                    f"Instance {db_instance_identifier} is not in the available state (it is {status})."
                )
            reset = Reset(database.master_username, password)
            RESETS[("instance", db_instance_identifier)] = reset
            threading.Timer(
                reset.window()[1] - time.monotonic() + 0.05,
                lambda: pending("instance", db_instance_identifier),
            ).start()
        return modify_instance(self, db_instance_identifier, db_kwargs)

    delete_instance = Backend.delete_db_instance

    def delete_db_instance(self, db_instance_identifier, *args, **kwargs):
        with LOCK:
            if ("instance", db_instance_identifier) in DELETING:
                raise rds_exceptions.InvalidDBInstanceStateFault(
                    f"Instance {db_instance_identifier} is already being deleted."
                )
            database = delete_instance(self, db_instance_identifier, *args, **kwargs)
            event("delete_instance", id=db_instance_identifier)
            if setting("deleting") > 0:
                self.databases[db_instance_identifier] = database
                DELETING[("instance", db_instance_identifier)] = time.monotonic()
            return database

    delete_cluster = Backend.delete_db_cluster

    def delete_db_cluster(self, cluster_identifier, snapshot_name=None):
        with LOCK:
            purge(self)
            if ("cluster", cluster_identifier) in DELETING:
                raise rds_exceptions.InvalidDBClusterStateFault(
                    f"DB cluster {cluster_identifier} is already being deleted."
                )
            cluster = delete_cluster(self, cluster_identifier, snapshot_name)
            event("delete_cluster", id=cluster_identifier)
            if setting("deleting") > 0:
                self.clusters[cluster_identifier] = cluster
                DELETING[("cluster", cluster_identifier)] = time.monotonic()
            return cluster

    Backend.create_db_cluster = create_db_cluster
    Backend.create_db_instance = create_db_instance
    Backend.describe_db_clusters = describe_db_clusters
    Backend.describe_db_instances = describe_db_instances
    Backend.modify_db_cluster = modify_db_cluster
    Backend.modify_db_instance = modify_db_instance
    Backend.delete_db_instance = delete_db_instance
    Backend.delete_db_cluster = delete_db_cluster


CHANGES = {}


def install_route53():
    Response = r53_responses.Route53
    change = Response.change_resource_record_sets

    def change_resource_record_sets(self):
        result = change(self)
        ident = "/change/C" + uuid.uuid4().hex[:12].upper()
        at = time.time() + float(ROUTE53.get("insync_after", 0))
        CHANGES[ident] = at
        result.result["ChangeInfo"]["Id"] = ident
        result.result["ChangeInfo"]["Status"] = "PENDING"
        event("change", id=ident, insync_at=at)
        return result

    get_change = Response.get_change

    def get_change_status(self):
        result = get_change(self)
        ident = result.result["ChangeInfo"]["Id"]
        if not ident.startswith("/change/"):
            ident = "/change/" + ident
        at = CHANGES.get(ident)
        if at is not None and time.time() < at:
            result.result["ChangeInfo"]["Status"] = "PENDING"
        return result

    Response.change_resource_record_sets = change_resource_record_sets
    Response.get_change = get_change_status


if RDS is not None:
    install_rds()
if ROUTE53 is not None:
    install_route53()
