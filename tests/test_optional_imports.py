"""The optional engines stay optional: importing the package, its solver API and its command line (every command
registered), the comparison and the Dask fan-out loads neither Dask nor torch.distributed (nor torch)."""
from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
import geoshare_opt, geoshare_opt.api, geoshare_opt.cli, geoshare_opt.compare, geoshare_opt.fanout
geoshare_opt.cli.load()
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'torch'))))
"""


def test_core_and_cli_import_no_dask_and_no_torch_distributed():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
