import sys

from graphmint.pipeline.cli import main

sys.exit(main())
