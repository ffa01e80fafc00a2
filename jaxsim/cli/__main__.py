"""``python -m jaxsim.cli``."""

import sys

from jaxsim.cli import main

sys.exit(main())
