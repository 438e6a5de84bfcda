"""The ``dopt`` console script and ``python -m dopt``."""

import gc
import sys


def main() -> int:
    # Start-up imports create a few hundred thousand objects that live as long as the process;
    # the cycle collector's passes over them while they are being created find nothing to free
    # and cost about 20 ms of a 150 ms one-file `dopt fix` (benchmarks/bench.py). The command
    # switches the collector back on once the rules are loaded (or, for commands without rules,
    # once its command line is parsed), after moving what exists by then out of its sight.
    gc.disable()
    from dopt.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
