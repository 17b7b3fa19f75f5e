"""``python -m trainguard.agent``: the agent, for environments without the console script."""

import sys

from trainguard.agent.main import main

sys.exit(main())
