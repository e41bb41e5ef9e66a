"""Union-find over the nodes 0..n-1 (path halving), for merging groups: the same-class rules of a branch-and-price
node, Kruskal's forest and single linkage in the sweep's bounds."""
from __future__ import annotations


class DisjointSets:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        """Merge the sets of ``a`` and ``b``; False if they were one set already."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[ra] = rb
        return True

    def roots(self) -> list[int]:
        """Every node's set representative, in node order."""
        return [self.find(i) for i in range(len(self.parent))]
