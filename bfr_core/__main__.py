import sys

from bfr_core.cli.main import main

sys.exit(main())
