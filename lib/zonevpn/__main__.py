import sys

from zonevpn.cli import main

sys.exit(main())
