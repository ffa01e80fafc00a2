"""``python -m jaxsim.cli``."""

import sys

try:  # Ctrl-C while the imports run: the same one line as during a command
    from jaxsim.cli import main
except KeyboardInterrupt:
    print("error: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
