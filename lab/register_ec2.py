"""Register the lab hosts as running EC2 instances in the lab's moto server.

Each container becomes one instance in a VPC subnet that matches the lab bridge, with its
private IP set to the container's address and the tags a real fleet would carry (Name, app,
env, role, address), so the real amazon.aws.aws_ec2 inventory plugin finds and groups them.
Idempotent: instances already registered (by Name tag) are kept; surplus ones are terminated.

usage: register_ec2.py ENDPOINT REGION SUBNET_PREFIX APP NAME=ADDR...
Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
"""

import sys

import boto3

# Any AMI id works in moto; this one is in its default image list (a Debian-like "ami-...").
AMI = "ami-12c6146b"


def main(argv):
    endpoint, region, prefix, app, *pairs = argv
    hosts = dict(p.split("=", 1) for p in pairs)
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=region)

    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:goship-lab", "Values": ["1"]}])["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(CidrBlock=f"{prefix}.0/24")["Vpc"]["VpcId"]
        ec2.create_tags(Resources=[vpc_id], Tags=[{"Key": "goship-lab", "Value": "1"}])
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    if subnets:
        subnet_id = subnets[0]["SubnetId"]
    else:
        subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{prefix}.0/24")["Subnet"]["SubnetId"]

    existing = {}
    for res in ec2.describe_instances(
        Filters=[
            {"Name": "tag:env", "Values": ["lab"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]:
        for inst in res["Instances"]:
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            existing[tags.get("Name")] = (inst["InstanceId"], inst.get("PrivateIpAddress"))

    surplus = [iid for name, (iid, addr) in existing.items() if hosts.get(name) != addr]
    if surplus:
        ec2.terminate_instances(InstanceIds=surplus)

    for name, addr in sorted(hosts.items()):
        if existing.get(name, (None, None))[1] == addr:
            continue
        tags = {"Name": name, "app": app, "env": "lab", "role": "app", "address": addr}
        ec2.run_instances(
            ImageId=AMI,
            InstanceType="t3.small",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet_id,
            PrivateIpAddress=addr,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        )
    print(f"registered {len(hosts)} instances ({len(surplus)} terminated)")


if __name__ == "__main__":
    main(sys.argv[1:])
