"""Entry point of the ROS 2 node ``siftrain_node``.

The node (subscription, worker thread, feature-cloud publishing, diagnostics) is issue 5 and not
written yet; until then this entry point says so and exits non-zero rather than pretending to run.
"""

import sys


def main() -> int:
    print("siftrain_node: the ROS 2 node is not implemented yet (tracked in issue 5); "
          "use `siftrain extract` or `siftrain demo` meanwhile.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
