"""Writes ray_haproxy_no_routes.cfg: the config Ray 2.60's HAProxyManager starts a node's HAProxy
with before the controller has sent it any route (HAProxyApi with no backends), rendered by Ray
itself inside the image with a compose node's environment:

    docker compose exec -T worker python - < tests/unit/data/capture_no_routes_config.py \
        > tests/unit/data/ray_haproxy_no_routes.cfg
"""

import os
import sys
import tempfile

from ray.serve._private.haproxy import HAProxyApi, HAProxyConfig
from ray.serve.config import HTTPOptions, gRPCOptions

NODE_ID = "0" * 56  # the manager puts every path under <dir>/<node id>/

with tempfile.TemporaryDirectory() as tmp:
    node_dir = os.path.join(tmp, NODE_ID)
    api = HAProxyApi(
        cfg=HAProxyConfig(
            http_options=HTTPOptions(host="0.0.0.0", port=8000),
            grpc_options=gRPCOptions(port=9000),
            is_head=False,
            socket_path=os.path.join(node_dir, "admin.sock"),
            server_state_base=node_dir,
            server_state_file=os.path.join(node_dir, "server-state"),
            metrics_socket_path=os.path.join(node_dir, "metrics.sock"),
        ),
        config_file_path=os.path.join(node_dir, "haproxy.cfg"),
    )
    api._generate_config_file_internal()  # what start() writes before it runs HAProxy
    with open(api.config_file_path) as f:
        sys.stdout.write(f.read().replace(tmp, "/tmp/haproxy-serve"))
