"""Random one-type instances with normal pair weights, shared by tests that need a dense signed (or, with
``signed=False``, non-negative) type. The random stream is the same for every variant of one seed."""
import numpy as np

from geoshare_opt import Instance


def one_type(n: int, k: int, density: float = 0.5, seed: int = 0, signed: bool = True, prefix: str = "n",
             type_: str = "t") -> Instance:
    rng = np.random.default_rng(seed)
    edges = [(f"{prefix}{i}", f"{prefix}{j}", float(rng.normal() if signed else abs(rng.normal())))
             for i in range(n) for j in range(i + 1, n) if rng.random() < density]
    return Instance.build([{"id": f"{prefix}{i}", "type": type_} for i in range(n)], edges, max_classes=k)
