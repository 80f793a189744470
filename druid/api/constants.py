"""API group, annotations, labels, finalizers, condition types and reasons, lastOperation values."""

from __future__ import annotations

GROUP = "druid.gardener.cloud"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

KIND_ETCD = "Etcd"
KIND_ETCD_COPY_BACKUPS_TASK = "EtcdCopyBackupsTask"
KIND_ETCD_OPS_TASK = "EtcdOpsTask"

# Annotations on Etcd ---------------------------------------------------------------------------------
ANNOTATION_OPERATION = "druid.gardener.cloud/operation"
ANNOTATION_GARDENER_OPERATION = "gardener.cloud/operation"  # deprecated alias of ANNOTATION_OPERATION
OPERATION_RECONCILE = "reconcile"
ANNOTATION_SUSPEND_SPEC_RECONCILE = "druid.gardener.cloud/suspend-etcd-spec-reconcile"
ANNOTATION_DISABLE_COMPONENT_PROTECTION = "druid.gardener.cloud/disable-etcd-component-protection"
ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION = "druid.gardener.cloud/disable-etcd-runtime-component-creation"
ANNOTATION_ALLOW_UNHEALTHY_POD_EVICTION = "resources.druid.gardener.cloud/allow-unhealthy-pod-eviction"
# Annotations druid writes or reads on other objects
ANNOTATION_CONFIGMAP_CHECKSUM = "checksum/etcd-configmap"  # pod template
ANNOTATION_LEASE_PEER_TLS_ENABLED = "member.etcd.gardener.cloud/tls-enabled"  # member Lease
ANNOTATION_VERIFIED_RESTORE_SCHEDULE = "druid.gardener.cloud/verified-restore-schedule"  # druid's own (cron)
ANNOTATION_SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"  # dropped for compaction pods
# Ownership by annotation (no owner reference) of very old etcd-druid releases; see api.facts.legacy_owned_by
ANNOTATION_LEGACY_OWNED_BY = "gardener.cloud/owned-by"  # <namespace>/<etcd name>
ANNOTATION_LEGACY_OWNER_TYPE = "gardener.cloud/owner-type"
LEGACY_OWNER_TYPE_ETCD = "etcd"

# Labels ------------------------------------------------------------------------------------------------
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_MANAGED_BY_VALUE = "etcd-druid"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_COMPONENT = "app.kubernetes.io/component"

# Values of LABEL_COMPONENT
COMPONENT_CLIENT_SERVICE = "etcd-client-service"
COMPONENT_CONFIGMAP = "etcd-configmap"
COMPONENT_MEMBER_LEASE = "etcd-member-lease"
COMPONENT_SNAPSHOT_LEASE = "etcd-snapshot-lease"
COMPONENT_PEER_SERVICE = "etcd-peer-service"
COMPONENT_PDB = "etcd-pdb"
COMPONENT_ROLE = "etcd-role"
COMPONENT_ROLE_BINDING = "etcd-role-binding"
COMPONENT_SERVICE_ACCOUNT = "etcd-service-account"
COMPONENT_STATEFULSET = "etcd-statefulset"
COMPONENT_COMPACTION_JOB = "etcd-snapshot-compaction-job"
COMPONENT_COPY_BACKUPS_JOB = "etcd-copy-backups-job"

# Finalizers --------------------------------------------------------------------------------------------
FINALIZER_ETCD = "druid.gardener.cloud/etcd-druid"  # Etcd, EtcdCopyBackupsTask, referenced Secrets
FINALIZER_ETCD_OPS_TASK = "druid.gardener.cloud/etcd-ops-task"

# Condition statuses ------------------------------------------------------------------------------------
CONDITION_TRUE = "True"
CONDITION_FALSE = "False"
CONDITION_UNKNOWN = "Unknown"
CONDITION_PROGRESSING = "Progressing"  # deprecated
CONDITION_CHECK_ERROR = "ConditionCheckError"  # deprecated

# Etcd condition types
CONDITION_READY = "Ready"
CONDITION_ALL_MEMBERS_READY = "AllMembersReady"
CONDITION_ALL_MEMBERS_UPDATED = "AllMembersUpdated"
CONDITION_BACKUP_READY = "BackupReady"
CONDITION_DATA_VOLUMES_READY = "DataVolumesReady"
CONDITION_CLUSTER_ID_MISMATCH = "ClusterIDMismatch"
CONDITION_BOOTSTRAPPED_WITH_EXISTING_CLUSTER = "BootstrappedWithExistingCluster"
CONDITION_LAST_SNAPSHOT_COMPACTION_SUCCEEDED = "LastSnapshotCompactionSucceeded"
CONDITION_MEMBER_UPDATE = "MemberUpdate"  # druid's own (OrderedMemberUpdate gate)
CONDITION_BACKUP_RESTORE_VERIFIED = "BackupRestoreVerified"  # druid's own (verified restores)

# EtcdCopyBackupsTask condition types
CONDITION_SUCCEEDED = "Succeeded"
CONDITION_FAILED = "Failed"

# Reasons (compaction job / pod outcome, full snapshot trigger)
REASON_PREEMPTION_BY_SCHEDULER = "PreemptionByScheduler"
REASON_DELETION_BY_TAINT_MANAGER = "DeletionByTaintManager"
REASON_EVICTION_BY_EVICTION_API = "EvictionByEvictionAPI"
REASON_TERMINATION_BY_KUBELET = "TerminationByKubelet"
REASON_PROCESS_FAILURE = "ProcessFailure"
REASON_UNKNOWN = "Unknown"
REASON_NONE = "None"
REASON_DEADLINE_EXCEEDED = "DeadlineExceeded"
REASON_BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
REASON_FULL_SNAPSHOT_TAKEN = "FullSnapshotTakenSuccessfully"
REASON_ERROR_TRIGGERING_FULL_SNAPSHOT = "ErrorTriggeringFullSnapshot"

# Etcd member status and role
MEMBER_READY = "Ready"
MEMBER_NOT_READY = "NotReady"
MEMBER_UNKNOWN = "Unknown"
ROLE_LEADER = "Leader"
ROLE_MEMBER = "Member"

# lastOperation on Etcd ---------------------------------------------------------------------------------
OPERATION_TYPE_CREATE = "Create"  # defined upstream, never written
OPERATION_TYPE_RECONCILE = "Reconcile"
OPERATION_TYPE_DELETE = "Delete"
OPERATION_STATE_PROCESSING = "Processing"
OPERATION_STATE_SUCCEEDED = "Succeeded"
OPERATION_STATE_ERROR = "Error"
OPERATION_STATE_REQUEUE = "Requeue"

# lastOperation on EtcdOpsTask
OPERATION_TYPE_ADMIT = "Admit"
OPERATION_TYPE_EXECUTION = "Execution"
OPERATION_TYPE_CLEANUP = "Cleanup"
OPERATION_STATE_IN_PROGRESS = "InProgress"
OPERATION_STATE_COMPLETED = "Completed"
OPERATION_STATE_FAILED = "Failed"

# EtcdOpsTask status.state
TASK_PENDING = "Pending"
TASK_IN_PROGRESS = "InProgress"
TASK_SUCCEEDED = "Succeeded"
TASK_FAILED = "Failed"
TASK_REJECTED = "Rejected"
TASK_COMPLETED_STATES = frozenset({TASK_SUCCEEDED, TASK_FAILED, TASK_REJECTED})

# Enum values of Etcd spec fields
METRICS_BASIC = "basic"
METRICS_EXTENSIVE = "extensive"
GC_POLICY_EXPONENTIAL = "Exponential"
GC_POLICY_LIMIT_BASED = "LimitBased"
COMPRESSION_GZIP = "gzip"
COMPRESSION_LZW = "lzw"
COMPRESSION_ZLIB = "zlib"
COMPACTION_MODE_PERIODIC = "periodic"
COMPACTION_MODE_REVISION = "revision"
BBOLT_FREELIST_ARRAY = "array"
BBOLT_FREELIST_MAP = "map"
SNAPSHOT_FULL = "full"
SNAPSHOT_DELTA = "delta"
