"""Small read-only probes of the lab's AWS endpoints, for lab/status.sh.

usage: probe_aws.py versioning ENDPOINT REGION BUCKET   -> the bucket's versioning status
       probe_aws.py instances ENDPOINT REGION           -> count of running env=lab instances
"""

import sys

import boto3


def main(what, endpoint, region, *args):
    if what == "versioning":
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
        print(s3.get_bucket_versioning(Bucket=args[0]).get("Status", "Disabled"))
    elif what == "instances":
        ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=region)
        filters = [
            {"Name": "tag:env", "Values": ["lab"]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
        res = ec2.describe_instances(Filters=filters)["Reservations"]
        print(sum(len(r["Instances"]) for r in res))
    else:
        sys.exit(f"unknown probe {what!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
