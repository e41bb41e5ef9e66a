"""Exit codes, decided in one place (README 'Exit codes')."""
OK = 0            # solved: a feasible assignment was written (optimal or not)
INTERNAL = 1      # a bug or an unexpected failure (message on stderr, no traceback unless GEOSHARE_DEBUG=1)
BAD_INPUT = 2     # bad input: file, format, option, spec, solver name
NO_SOLUTION = 3   # no feasible solution: infeasibility proven, or none found in the time given
INTERRUPTED = 130  # Ctrl-C (SIGINT) before any output: nothing was written
TERMINATED = 143  # SIGTERM (batch schedulers, `timeout`) before any output: nothing was written
