"""``python -m harness.bot``: the bot shell's command line."""

import sys

from harness.bot.command import main

sys.exit(main())
