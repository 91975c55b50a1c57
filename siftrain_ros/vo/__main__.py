"""``python -m siftrain_ros.vo``: the ``siftrain_vo`` node."""

import sys

from . import main

sys.exit(main())
