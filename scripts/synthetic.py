"""A generated app of N services, shaped like a real microservice app, for scale tests and `make bench`.

One postgres, then N-1 HTTP services: every fifth public behind the load balancer on its own path,
every tenth built from its own ECR repository, the rest from a public image. Every tenth service
leads a team of the next nine: it talks to the database, they talk to it, all through Cloud Map
names (a security group takes 60 rules by default, so no one service has every other as client).
Hosts are m5.4xlarge (7 awsvpc tasks each), as many as the fit check needs.

Usage: python scripts/synthetic.py N > app.yaml
"""
from __future__ import annotations

import sys

import yaml


def app_data(count: int) -> dict:
    services = [{
        "name": "db", "image": "postgres:16.4-alpine", "port": 5432, "cpu": 256, "memory": 512,
        "environment": {"POSTGRES_USER": "app"}, "secrets": {"POSTGRES_PASSWORD": "db-password"},
        "health_check": {"command": 'pg_isready -U "$POSTGRES_USER"'},
        "deployment": {"min_healthy_percent": 0, "max_percent": 100},
    }]
    for index in range(1, count):
        name = f"svc-{index:03d}"
        lead = "db" if index % 10 == 0 or index < 10 else f"svc-{index - index % 10:03d}"
        service = {"name": name, "port": 8080, "cpu": 256, "memory": 512,
                   "environment": {"UPSTREAM": f"{{{lead}.host}}:{{{lead}.port}}"}, "depends_on": [lead]}
        if lead == "db":
            service["secrets"] = {"DB_PASSWORD": "db-password"}
        if index % 10 == 0:
            service["repository"] = name
        else:
            service["image"] = "public.ecr.aws/nginx/nginx:1.27"
        if index % 5 == 0:
            service["public"] = {"port": 80, "path": f"/{name}/*"}
            service["health_check"] = {"path": f"/{name}/health"}
        services.append(service)
    return {
        "name": "synth", "description": f"Generated app of {count} services",
        "cluster": {"instance_type": "m5.4xlarge", "min_size": 1, "max_size": 100},
        "secrets": {"db-password": {"description": "Password of the app's postgres user"}},
        "services": services,
    }


if __name__ == "__main__":
    yaml.safe_dump(app_data(int(sys.argv[1])), sys.stdout, sort_keys=False)
