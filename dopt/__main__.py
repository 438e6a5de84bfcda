import sys

from dopt.cli import main

sys.exit(main())
