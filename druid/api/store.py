"""Object-store settings shared by Etcd backups and EtcdCopyBackupsTask, and the provider name mapping."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from druid.api.common import DruidModel, SecretReference
from druid.api.schema import CEL

CONTAINER_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$"

# backup-restore storage provider names
S3 = "S3"
ABS = "ABS"
GCS = "GCS"
SWIFT = "Swift"
OSS = "OSS"
ECS = "ECS"
OCS = "OCS"
LOCAL = "Local"
LOCAL_DEFAULT_HOST_PATH = "/etc/gardener/local-backupbuckets"  # Local buckets' host directory by default

_PROVIDERS = {
    "aws": S3, "S3": S3, "s3": S3, "stackit": S3,
    "azure": ABS, "ABS": ABS, "abs": ABS,
    "gcp": GCS, "GCS": GCS, "gcs": GCS,
    "openstack": SWIFT, "Swift": SWIFT, "swift": SWIFT,
    "alicloud": OSS, "OSS": OSS, "oss": OSS,
    "dell": ECS, "ECS": ECS, "ecs": ECS,
    "openshift": OCS, "OCS": OCS, "ocs": OCS,
    "Local": LOCAL, "local": LOCAL,
}  # fmt: skip


def storage_provider(provider: str | None) -> str:
    """Map a store's ``provider`` (infrastructure or backup-restore name) to the backup-restore name.

    Raises ``ValueError("unsupported storage provider ...")`` for anything else, including an empty value.
    """
    try:
        return _PROVIDERS[provider or ""]
    except KeyError:
        raise ValueError(f"unsupported storage provider: {provider!r}") from None


class StoreSpec(DruidModel):
    """Where backups are kept in an object store."""

    container: Annotated[str, Field(max_length=63, pattern=CONTAINER_PATTERN)] | None = Field(
        default=None, description="Bucket or container holding the backups."
    )
    endpoint_override: Annotated[str, CEL("isURL(self)", "endpoint override must be a valid URL.")] | None = Field(
        default=None, description="Endpoint to use instead of the provider's default."
    )
    prefix: str = Field(description="Key prefix of the backups inside the container.")
    provider: str | None = Field(default=None, description="Storage provider, e.g. aws, S3, gcp, Local.")
    secret_ref: SecretReference | None = Field(
        default=None,
        description="Secret with the store credentials. When omitted, backup-restore uses the ambient "
        "cloud identity of the pod.",
    )
