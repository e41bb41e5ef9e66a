"""Measured refinement of a whole colouring: a local search scored by the spec's loss of the whole shared network.

The quadratic criterion ranks single pairs well and whole colourings badly (damage saturates, and a change in an early
layer propagates through every later one), so the colouring the package recommends is chosen by measuring. The
search starts from every colouring it is given (the solved one and every heuristic at the same budget, all of them
measured) and from the best of them moves through large neighbourhoods:

* ``move`` one layer to another class of its type (or to a new class where the budget allows),
* ``swap`` two layers of one type between their classes,
* ``merge+split``: merge two classes of one type and split a class of any type in two (the best split under the
  surrogate), which moves class budget between types where ``max_params`` allows,
* ``pattern``: replace a type's whole partition by another known one of that type (another start's, the surrogate's
  best at that class count, or another type's pattern laid over this type's layers in order).

Candidates are tried in the order the surrogate (any ``ClassCostOracle``: measured class costs, or the diagonal
model's true class cost) predicts them to be best. Every candidate is scored on the **search** batches by racing:
batch by batch, stopping as soon as its paired mean loss is above the incumbent's; one that is better on all search
batches must also be better on the **confirm** batches (a second calibration split) before it is accepted, so a move
that only fits the search batches is not taken. Nothing held out is ever used. The search stops at a local optimum
(no candidate accepted in a whole neighbourhood), at the forward-pass budget or at the time limit; the forward-pass
budget makes the result the same on every machine. The answer is never worse than the best start on the
calibration data it was measured on (the starts are candidates too), nor worse than any start on the confirm batches.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..instance import Instance

Partition = dict      # type -> tuple of classes, each a sorted tuple of global node indices (classes sorted)


# ---------------------------------------------------------------------- partitions
def partition_of(instance: Instance, labels: np.ndarray) -> Partition:
    out: Partition = {}
    for t in instance.types:
        groups: dict[int, list[int]] = {}
        for i in instance.type_members(t):
            groups.setdefault(int(labels[i]), []).append(int(i))
        out[t] = canonical_classes(groups.values())
    return out


def canonical_classes(classes) -> tuple[tuple[int, ...], ...]:
    return tuple(sorted(tuple(sorted(c)) for c in classes if c))


def labels_of(instance: Instance, partition: Partition) -> np.ndarray:
    labels = np.empty(len(instance.nodes), dtype=np.int64)
    c = 0
    for t in instance.types:
        for members in partition[t]:
            labels[list(members)] = c
            c += 1
    return labels


def all_classes(partition: Partition) -> list[tuple[int, ...]]:
    return [c for t in partition for c in partition[t]]


def freeze(partition: Partition) -> tuple:
    return tuple(sorted(partition.items()))


class Feasibility:
    """The instance's budget for partitions and changes to them: class caps, ``max_params`` (a class stores its
    largest member) and hard pairs."""

    def __init__(self, instance: Instance):
        self.instance = instance
        self.params = instance.params
        self.caps = {t: instance.type_cap(t) for t in instance.types}
        self.hard = hard_pairs(instance)

    def type_stored(self, classes) -> int:
        return int(sum(self.params[list(c)].max() for c in classes))

    def ok(self, partition: Partition) -> bool:
        return self.ok_change({t: () for t in partition}, tuple(partition.items()), 0, 0)

    def ok_change(self, inc: Partition, change: "Change", n_classes: int, stored: int) -> bool:
        """Whether ``inc`` (``n_classes`` classes storing ``stored`` parameters) with ``change`` applied fits."""
        b = self.instance.budget
        for t, classes in change:
            if len(classes) > self.caps[t] or self._holds_hard_pair(t, classes):
                return False
            n_classes += len(classes) - len(inc[t])
            stored += self.type_stored(classes) - self.type_stored(inc[t])
        return n_classes <= b.max_classes and (b.max_params is None or stored <= b.max_params)

    def _holds_hard_pair(self, t: str, classes) -> bool:
        pairs = self.hard.get(t)
        return bool(pairs) and any(holds_hard_pair(pairs, c) for c in classes)


def hard_pairs(instance: Instance) -> dict[str, set[tuple[int, int]]]:
    """Per type with hard edges, its hard pairs as (smaller, larger) global node indices."""
    out = {}
    for t in instance.types:
        part = instance.part(t)
        if len(part.hard_u):
            u, v = part.nodes[part.hard_u], part.nodes[part.hard_v]
            out[t] = {(int(min(a, b)), int(max(a, b))) for a, b in zip(u, v)}
    return out


def holds_hard_pair(pairs: set[tuple[int, int]], members) -> bool:
    members = sorted(int(i) for i in members)
    return any((a, b) in pairs for a, b in itertools.combinations(members, 2))


# ---------------------------------------------------------------------- the surrogate
class Surrogate:
    """Predicted cost of a partition: the oracle's class costs summed (memoised per class)."""

    def __init__(self, oracle):
        self.oracle = oracle
        self._memo: dict[tuple[int, ...], float] = {}
        self._splits: dict[tuple[int, ...], tuple | None] = {}

    def cls(self, members: tuple[int, ...]) -> float:
        v = self._memo.get(members)
        if v is None:
            v = (self.oracle.singleton_cost(members[0]) if len(members) == 1
                 else float(self.oracle.cost(list(members))))
            self._memo[members] = v
        return v

    def type_cost(self, classes) -> float:
        return float(sum(self.cls(c) for c in classes))

    def best_split(self, members: tuple[int, ...], limit: int = 10) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """The two-way split of a class with the lowest predicted cost (every split for up to ``limit`` members,
        else the best single member split off); memoised."""
        if members in self._splits:
            return self._splits[members]
        best = None
        if len(members) >= 2:
            first, rest = members[0], members[1:]
            if len(members) <= limit:
                splits = ((tuple(sorted((first,) + a)), tuple(x for x in rest if x not in a))
                          for r in range(0, len(rest)) for a in itertools.combinations(rest, r))
            else:
                splits = (((m,), tuple(x for x in members if x != m)) for m in members)
            best = min(splits, key=lambda s: self.cls(s[0]) + self.cls(s[1]))
        self._splits[members] = best
        return best


# ---------------------------------------------------------------------- neighbourhoods
Change = tuple      # ((type, new classes of that type), ...): the types a candidate changes


def apply_change(partition: Partition, change: Change) -> Partition:
    out = dict(partition)
    for t, classes in change:
        out[t] = classes
    return out


def _change(t: str, classes) -> Change:
    return ((t, canonical_classes(classes)),)


def moves(partition: Partition) -> Iterator[tuple[str, Change]]:
    """One layer to another class of its type, or alone into a new class."""
    for t, classes in partition.items():
        for a, A in enumerate(classes):
            for i in A:
                rest = [c for k, c in enumerate(classes) if k != a]
                shrunk = tuple(x for x in A if x != i)
                for b, B in enumerate(rest):
                    yield "move", _change(t, [*rest[:b], B + (i,), *rest[b + 1:], shrunk])
                if shrunk:
                    yield "move", _change(t, [*rest, shrunk, (i,)])


def swaps(partition: Partition) -> Iterator[tuple[str, Change]]:
    """Two layers of one type exchange their classes."""
    for t, classes in partition.items():
        for a, b in itertools.combinations(range(len(classes)), 2):
            A, B = classes[a], classes[b]
            if len(A) == 1 and len(B) == 1:             # two singletons swapped: the same partition
                continue
            rest = [c for k, c in enumerate(classes) if k not in (a, b)]
            for i in A:
                for j in B:
                    yield "swap", _change(t, [*rest, tuple(x for x in A if x != i) + (j,),
                                              tuple(x for x in B if x != j) + (i,)])


def merge_splits(partition: Partition, surrogate: Surrogate, params: np.ndarray, slack: float,
                 limit: int = 24) -> Iterator[tuple[str, Change]]:
    """Two classes of one type merged and one class (of any type) split in two by the surrogate's best split: the
    class budget moves between types. Each of the ``limit`` merges the surrogate rates best is paired with the
    ``limit`` best splits whose stored parameters fit ``slack`` plus what the merge frees."""
    stored = lambda c: int(params[list(c)].max())
    merges, splits = [], []
    for t, classes in partition.items():
        for a, b in itertools.combinations(range(len(classes)), 2):
            merged = tuple(sorted(classes[a] + classes[b]))
            delta = surrogate.cls(merged) - surrogate.cls(classes[a]) - surrogate.cls(classes[b])
            merges.append((delta, t, a, b, stored(classes[a]) + stored(classes[b]) - stored(merged)))
        for c, C in enumerate(classes):
            split = surrogate.best_split(C)
            if split is not None:
                splits.append((surrogate.cls(split[0]) + surrogate.cls(split[1]) - surrogate.cls(C), t, c, split,
                               stored(split[0]) + stored(split[1]) - stored(C)))
    merges.sort(key=lambda m: m[0])
    splits.sort(key=lambda x: x[0])
    for _, t, a, b, freed in merges[:limit]:
        classes = partition[t]
        rest = [x for k, x in enumerate(classes) if k not in (a, b)] + [classes[a] + classes[b]]
        paired = 0
        for _, u, c, split, cost in splits:
            if paired == limit:
                break
            if cost > slack + freed or (u == t and c in (a, b)):     # over budget, or merged and split back
                continue
            paired += 1
            if u != t:
                targets = partition[u]
                yield "merge+split", _change(t, rest) + _change(u, [*targets[:c], *targets[c + 1:], *split])
            else:
                yield "merge+split", _change(t, [x for k, x in enumerate(classes) if k not in (a, b, c)]
                                             + [classes[a] + classes[b], *split])


def patterns(partition: Partition, pool: Mapping[str, Sequence[tuple]], layer_order: Mapping[str, np.ndarray]
             ) -> Iterator[tuple[str, Change]]:
    """Whole-type replacements: every pool partition of the type, and every other type's pattern laid over this
    type's layers in layer order."""
    for t in partition:
        for classes in pool.get(t, ()):
            if classes != partition[t]:
                yield "pattern", ((t, classes),)
        for u in partition:
            if u == t or len(layer_order[u]) != len(layer_order[t]):
                continue
            position = {int(n): k for k, n in enumerate(layer_order[u])}
            mapped = canonical_classes([[int(layer_order[t][position[n]]) for n in c] for c in partition[u]])
            if mapped != partition[t]:
                yield "pattern", ((t, mapped),)


# ---------------------------------------------------------------------- the search
@dataclass
class Scored:
    partition: Partition
    search: np.ndarray            # loss per search batch
    confirm: np.ndarray | None    # loss per confirm batch (None: not measured)


@dataclass
class RefineResult:
    labels: np.ndarray
    start: str                              # the start the answer descends from
    search_loss: float
    confirm_loss: float
    starts: dict                            # name -> {"search": loss, "confirm": loss}
    accepted: list = field(default_factory=list)    # one record per accepted move
    evaluated: int = 0                      # candidates measured (at least one batch)
    forward_passes: int = 0
    time_s: float = 0.0
    stopped: str = ""                       # "local optimum", "budget", "time limit"

    def to_dict(self) -> dict:
        return {"start": self.start, "search_loss": self.search_loss, "confirm_loss": self.confirm_loss,
                "starts": self.starts, "accepted": self.accepted, "evaluated": self.evaluated,
                "forward_passes": self.forward_passes, "time_s": round(self.time_s, 3), "stopped": self.stopped}


class OutOfBudget(Exception):
    pass


class Refiner:
    """See the module docstring. ``evaluator``: a ``ColouringEvaluator``; ``search``/``confirm``: its batch indices;
    ``surrogate``: a ``ClassCostOracle`` ordering the candidates; ``max_passes``: forward passes (one batch each)
    the search may spend after measuring the starts; ``time_limit``: seconds (None: no limit)."""

    def __init__(self, evaluator, instance: Instance, search: Sequence[int], confirm: Sequence[int], surrogate, *,
                 max_passes: int = 400, time_limit: float | None = None, min_gain: float = 0.0,
                 pool: Mapping[str, Sequence[tuple]] | None = None,
                 progress: Callable[[dict], None] | None = None):
        if not search or not confirm or set(search) & set(confirm):
            raise InputError("refinement needs two disjoint, non-empty sets of calibration batches")
        from ..baselines import layer_order
        self.ev, self.instance = evaluator, instance
        self.search, self.confirm = list(search), list(confirm)
        self.surrogate = Surrogate(surrogate)
        self.feasible = Feasibility(instance)
        self.max_passes, self.time_limit, self.min_gain = max_passes, time_limit, min_gain
        self.pool = {t: list(v) for t, v in (pool or {}).items()}
        self.order = {t: layer_order(instance, t) for t in instance.types}
        self.say = progress or (lambda info: None)
        self.passes = 0
        self.evaluated = 0
        self._seen: set = set()
        self._spent_before = 0          # passes spent on the starts (not charged to the budget)
        self._t0 = time.perf_counter()
        self._deadline = None if time_limit is None else self._t0 + time_limit

    # ------------------------------------------------------------------ measuring
    def _losses(self, indices: Sequence[int]) -> np.ndarray:
        out = self.ev.batch_losses(indices)
        self.passes += len(indices)
        return out

    def measure(self, partition: Partition) -> Scored:
        """Full measurement (search and confirm batches), not charged to the budget: for the starts."""
        self.ev.set_classes(all_classes(partition))
        return Scored(partition, self._losses(self.search), self._losses(self.confirm))

    def _check_budget(self) -> None:
        if self.passes - self._spent_before >= self.max_passes:
            raise OutOfBudget("budget")
        if self._deadline is not None and time.perf_counter() > self._deadline:
            raise OutOfBudget("time limit")

    def race(self, partition: Partition, inc: Scored) -> Scored | None:
        """The candidate scored batch by batch against the incumbent (paired); None as soon as it is behind, or when
        the confirm batches do not agree."""
        self.ev.set_classes(all_classes(partition))
        self.evaluated += 1
        losses = np.empty(len(self.search))
        for k, b in enumerate(self.search):
            self._check_budget()
            losses[k] = self._losses([b])[0]
            gap = self.ev.mean(losses[:k + 1] - inc.search[:k + 1], self.search[:k + 1])
            if gap > 0:
                return None
        if self.ev.mean(inc.search - losses, self.search) <= self.min_gain * abs(self.ev.mean(inc.search, self.search)):
            return None
        self._check_budget()
        confirm = self._losses(self.confirm)
        if self.ev.mean(confirm - inc.confirm, self.confirm) >= 0:
            return None
        return Scored(partition, losses, confirm)

    # ------------------------------------------------------------------ the search
    def candidates(self, inc: Partition) -> list[tuple[float, str, Change]]:
        """Every feasible change of ``inc`` with its predicted change of the surrogate cost, best predicted first."""
        n_classes = sum(len(c) for c in inc.values())
        stored = sum(self.feasible.type_stored(c) for c in inc.values())
        base = {t: self.surrogate.type_cost(c) for t, c in inc.items()}
        out, keys = [], set()
        max_params = self.instance.budget.max_params
        slack = float("inf") if max_params is None else max_params - stored
        gens = itertools.chain(patterns(inc, self.pool, self.order), moves(inc), swaps(inc),
                               merge_splits(inc, self.surrogate, self.feasible.params, slack))
        for kind, change in gens:
            if change in keys or not self.feasible.ok_change(inc, change, n_classes, stored):
                continue
            keys.add(change)
            out.append((sum(self.surrogate.type_cost(c) - base[t] for t, c in change), kind, change))
        out.sort(key=lambda x: x[0])
        return out

    def run(self, starts: Mapping[str, np.ndarray]) -> RefineResult:
        """Descend from the best start; at a local optimum with budget left, from the next best start, and so on;
        the answer is the best local optimum on the search and confirm batches together (``choose``)."""
        scored = self.measure_starts(starts)
        total = lambda s: self.ev.mean(np.concatenate([s.search, s.confirm]), self.search + self.confirm)
        optima, accepted, stopped = [], [], "local optimum"
        for name in sorted(scored, key=lambda n: total(scored[n])):
            inc, moves, stopped = self.descend(scored[name])
            accepted += [dict(m, start=name) for m in moves]
            optima.append((name, inc))
            if stopped != "local optimum":
                break
        start, inc = self.choose(optima, scored)
        return RefineResult(labels=labels_of(self.instance, inc.partition), start=start,
                            search_loss=self.ev.mean(inc.search, self.search),
                            confirm_loss=self.ev.mean(inc.confirm, self.confirm),
                            starts={n: {"search": self.ev.mean(s.search, self.search),
                                        "confirm": self.ev.mean(s.confirm, self.confirm)} for n, s in scored.items()},
                            accepted=accepted, evaluated=self.evaluated, forward_passes=self.passes,
                            time_s=time.perf_counter() - self._t0, stopped=stopped)

    def choose(self, optima: list[tuple[str, Scored]], starts: Mapping[str, Scored]) -> tuple[str, Scored]:
        """The best of the local optima and the starts on the search and confirm batches together, among those that
        are not worse on the confirm batches than any start: a colouring the confirm split shows behind a start
        (a heuristic) is never the answer, and the start best on the confirm split always qualifies."""
        total = lambda s: self.ev.mean(np.concatenate([s.search, s.confirm]), self.search + self.confirm)
        confirm = lambda s: self.ev.mean(s.confirm, self.confirm)
        floor = min(confirm(s) for s in starts.values())
        eligible = [c for c in [*optima, *starts.items()] if confirm(c[1]) <= floor]
        return min(eligible, key=lambda c: total(c[1]))

    def measure_starts(self, starts: Mapping[str, np.ndarray]) -> dict[str, Scored]:
        """Every feasible start measured on all search and confirm batches; their type partitions join the pool."""
        if not starts:
            raise InputError("refinement needs at least one start colouring")
        scored = {}
        for name, labels in starts.items():
            part = partition_of(self.instance, labels)
            if not self.feasible.ok(part):
                continue
            self.say({"step": "refine", "message": f"measuring start {name}"})
            scored[name] = self.measure(part)
            self._seen.add(freeze(part))
            for t, classes in part.items():
                if classes not in self.pool.setdefault(t, []):
                    self.pool[t].append(classes)
        if not scored:
            raise InputError("no start colouring fits the instance's budget")
        self._spent_before = self.passes
        return scored

    def descend(self, inc: Scored) -> tuple[Scored, list[dict], str]:
        """First-improvement descent in sweeps: within a sweep a change of a type's partition that was rejected is
        not tried again after another type changed (the effects of changes to different types mostly add up);
        the next sweep tries everything again against the new incumbent; a sweep without an accepted move ends
        the search at a local optimum."""
        accepted = []
        try:
            while True:
                tried: set = set()
                before = len(accepted)
                while self._first_improvement(inc, tried, accepted):
                    inc = accepted[-1].pop("scored")
                if len(accepted) == before:
                    return inc, accepted, "local optimum"
        except OutOfBudget as why:
            return inc, accepted, str(why)

    def _first_improvement(self, inc: Scored, tried: set, accepted: list) -> bool:
        for delta, kind, change in self.candidates(inc.partition):
            key = tuple((t, inc.partition[t], classes) for t, classes in change)
            cand = apply_change(inc.partition, change)
            if key in tried or freeze(cand) in self._seen:
                continue
            tried.add(key)
            self._seen.add(freeze(cand))
            self.say({"step": "search (forward passes)", "done": self.passes - self._spent_before,
                      "total": self.max_passes})
            better = self.race(cand, inc)
            if better is None:
                continue
            accepted.append({"kind": kind, "predicted": delta, "search": self.ev.mean(better.search, self.search),
                             "confirm": self.ev.mean(better.confirm, self.confirm),
                             "passes": self.passes - self._spent_before, "scored": better})
            self.say({"step": "refine", "message": f"accepted {kind}: search loss "
                      f"{accepted[-1]['search']:.5g}, confirm {accepted[-1]['confirm']:.5g}"})
            return True
        return False
