"""python -m reverb_server.healthcheck [host:port]: exit 0 if Reverb answers.

Used by the compose and Kubernetes health checks.
"""
import sys

import reverb

from common.reverb_calls import SERVER_AWAY_ERRORS


def main() -> int:
  address = sys.argv[1] if len(sys.argv) > 1 else 'localhost:8000'
  try:
    tables = reverb.Client(address).server_info(timeout=3)
  except SERVER_AWAY_ERRORS as e:
    print(f'unhealthy: no answer from {address}: {e}', file=sys.stderr)
    return 1
  print(f'healthy: {address} serves {sorted(tables)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
