"""``python -m siftrain_ros.node``: the node, as the console script ``siftrain_node`` runs it."""

import sys

from . import main

sys.exit(main())
