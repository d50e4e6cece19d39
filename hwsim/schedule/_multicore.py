"""A workload divided over several cores (``cores.split``): every GEMM layer split into one part per core.

* ``n``: output channels. A layer with independent groups (attention heads: ``count``; grouped or depthwise
  convolutions: ``groups``) that the core count divides is split by groups (head-parallel attention: each
  core reads its heads' K/V cache only); otherwise by N (``fc``/``gemm`` ``n``, a conv's ``out_channels``).
  Each core reads its slice of the weights and the *whole* input: the next layer needs every core's output
  slice (an all-gather over the network, :func:`hwsim.simulate_multicore` counts it).
* ``m``: rows. ``fc``/``gemm`` ``m`` (tokens or batch), a conv's ``batch`` (spatial splits with halos are not
  modelled). Each core reads all the weights (no multicast: the weights are fetched once per core). A
  ``gemm`` whose ``m`` the cores do not divide but whose ``count`` they do is split by its independent copies
  instead: decode attention is ``count`` = KV heads x sequences with ``m`` = q heads per KV head, so a batch
  split gives each core its sequences, and each core reads only their KV caches.

Parts are equal; a dimension the core count does not divide is an error, or with ``cores.uneven`` the first
``d mod c`` cores take one more. Non-GEMM nodes follow their producers (their element counts come from the
split producers); an explicit ``elements``/``channels``/``row`` is divided the same way. A row-wise norm or
softmax whose row is split needs a cross-core reduction of its statistics: not modelled (a few bytes).
"""

from __future__ import annotations

from ..errors import Found, SpecError
from ..spec import Gemm, VectorOp, Workload

__all__ = ["split_workload", "split_key"]


def _parts(d: int, c: int, uneven: bool, what: str, source: str) -> list[int]:
    q, r = divmod(d, c)
    if r and (not uneven or q == 0):
        raise SpecError(source, "cores.split",
                        f"a dimension the {c} cores divide (or cores.uneven: true with "
                        f"at least {c})", Found(what))
    return [q + (1 if i < r else 0) for i in range(c)]


def split_key(nd, cores: int, mode: str = "n") -> tuple[str, int]:
    """The dimension a GEMM layer (``Gemm`` or conv) is divided along over ``cores`` (module docstring) and
    its size: ``("count" | "groups" | "n" | "out_channels" | "m" | "batch", size)``."""
    if mode == "n":
        g = nd.count if isinstance(nd, Gemm) else nd.n_groups
        if g > 1 and g % cores == 0:
            return ("count", g) if isinstance(nd, Gemm) else ("groups", g)
        return ("n", nd.n) if isinstance(nd, Gemm) else ("out_channels", nd.out_channels)
    if isinstance(nd, Gemm):
        if nd.m % cores and nd.count > 1 and nd.count % cores == 0:
            return ("count", nd.count)
        return ("m", nd.m)
    return ("batch", nd.batch)


def split_workload(wl: Workload, cores: int, mode: str = "n", *, uneven: bool = False,
                   source: str = "<arch>") -> list[Workload]:
    """One workload per core (module docstring); node names and order are kept.

    Raises
    ------
    SpecError
        ``cores.split``: a dimension the core count does not divide (naming the layer and the dimension).
    """
    if cores == 1:
        return [wl]
    per: list[list] = [[] for _ in range(cores)]
    ratio: list[list[float]] = [[] for _ in range(cores)]
    for nd in wl.nodes:
        if isinstance(nd, VectorOp):
            for c in range(cores):
                upd = {}
                for key in ("elements", "channels", "row"):
                    v = getattr(nd, key)
                    if v is not None:
                        upd[key] = max(1, round(v * ratio[c][-1])) if ratio[c] else v
                per[c].append(nd.model_copy(update=upd) if upd else nd)
            continue
        key, d = split_key(nd, cores, mode)
        parts = _parts(d, cores, uneven, f"layer {nd.name!r}: {key} = {d} over {cores} cores", source)
        for c in range(cores):
            upd = {key: parts[c]}
            if key == "groups":  # a grouped conv: channels follow the groups
                upd.update(in_channels=nd.in_channels // cores, out_channels=nd.out_channels // cores)
            per[c].append(nd.model_copy(update=upd))
            ratio[c].append(parts[c] / d)
    out = []
    for c in range(cores):
        data = wl.model_dump(mode="python", by_alias=True, exclude={"nodes", "layers"})
        data["layers"] = [n.model_dump(mode="python", exclude_defaults=False) for n in per[c]]
        out.append(Workload.model_validate(data))
    return out
