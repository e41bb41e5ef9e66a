"""``python -m geoshare_opt.cli``: the same entry point as the ``geoshare-opt`` console script."""
from . import main

main()
