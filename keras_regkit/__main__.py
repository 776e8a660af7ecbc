"""`python -m keras_regkit` runs the `regkit` command."""

import sys

from keras_regkit.cli import main

sys.exit(main())
