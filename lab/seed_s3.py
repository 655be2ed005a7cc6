"""Create the lab's S3 buckets (versioned) and serve the vendored .debs from them.

Hosts without repository access get third-party packages from S3 in real fleets too; the lab
does the same with Consul and pipexec under s3://ARTIFACTS/vendor/. Idempotent.

usage: seed_s3.py ENDPOINT REGION ARTIFACT_BUCKET LEDGER_BUCKET DEB...
"""

import hashlib
import os
import sys

import boto3
from botocore.exceptions import ClientError


def main(argv):
    endpoint, region, artifacts, ledger, *debs = argv
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
    for bucket in (artifacts, ledger):
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError:
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if status != "Enabled":
            sys.exit(f"bucket {bucket}: versioning is {status!r}, expected 'Enabled'")
    for path in debs:
        key = "vendor/" + os.path.basename(path)
        with open(path, "rb") as f:
            body = f.read()
        digest = hashlib.sha256(body).hexdigest()
        try:
            if s3.head_object(Bucket=artifacts, Key=key)["Metadata"].get("sha256") == digest:
                continue
        except ClientError:
            pass
        s3.put_object(Bucket=artifacts, Key=key, Body=body, Metadata={"sha256": digest})
    print(f"buckets {artifacts}, {ledger} versioned; {len(debs)} vendor packages in s3://{artifacts}/vendor/")


if __name__ == "__main__":
    main(sys.argv[1:])
