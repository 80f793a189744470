#!/usr/bin/env python3
"""Write the TLS Secrets of manifests/samples/etcd-3-tls.yaml to stdout as a YAML stream.

    .venv/bin/python hack/gen-sample-secrets.py [--namespace default] [--name etcd-3-tls] | kubectl apply -f -

The Secrets and their certificates are described in druid/testing/samples.py.
"""

from __future__ import annotations

import argparse
import sys

from druid.render import to_yaml
from druid.testing.samples import tls_secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default="default", help="namespace of the Etcd and its Secrets")
    parser.add_argument("--name", default="etcd-3-tls", help="name of the Etcd (Secret names and SANs derive from it)")
    args = parser.parse_args(argv)
    sys.stdout.write(to_yaml(tls_secrets(args.name, args.namespace)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
