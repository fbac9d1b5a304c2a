import sys

from metamix.cli import main

sys.exit(main())
