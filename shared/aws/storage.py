"""The artifacts bucket: outputs, inputs and workflows too large for a job item."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import ServiceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ArtifactStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)
        except (ClientError, BotoCoreError) as error:
            raise ServiceUnavailable(f"the bucket did not store {key}", cause=type(error).__name__) from error

    def get_bytes(self, key: str) -> bytes:
        return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def get_with_type(self, key: str, max_bytes: int) -> tuple[bytes, str] | None:
        """The object and its content type; None when it is missing. Raises ValueError when too large."""
        try:
            response = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        if int(response.get("ContentLength", 0)) > max_bytes:
            response["Body"].close()
            raise ValueError(f"{response['ContentLength']} bytes is more than the limit of {max_bytes}")
        return response["Body"].read(), str(response.get("ContentType") or "application/octet-stream")

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self._bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        """Deletes every object under ``prefix``; returns how many there were."""
        deleted = 0
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise ServiceUnavailable(f"the bucket did not answer for {key}", cause="ClientError") from error
        except BotoCoreError as error:
            raise ServiceUnavailable(
                f"the bucket did not answer for {key}", cause=type(error).__name__
            ) from error
        return True

    def presign_get(self, key: str, ttl_seconds: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=ttl_seconds
        )

    def presign_post(
        self, key: str, content_type: str, max_bytes: int, ttl_seconds: int
    ) -> tuple[str, dict[str, str]]:
        """A form upload S3 itself holds to this key, this content type and at most ``max_bytes``."""
        post = self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=ttl_seconds,
        )
        return str(post["url"]), {str(k): str(v) for k, v in post["fields"].items()}
