"""SCALE-Sim 3.0.0 inputs: topology CSVs (conv and GEMM form) and ``.cfg`` architecture files.

What SCALE-Sim itself does with these files, and so what this reader reproduces
(``../shared/reference/scalesim.md`` §1, and the SCALE-Sim sources named in each docstring):

* Topology CSV (``scalesim/topology_utils.py``): one header line, then one layer per line. The conv form
  is ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,``
  with an optional ``Sparsity`` (``N:M``) column; the GEMM form is ``Layer, M, N, K,`` (optional
  ``Sparsity``). SCALE-Sim is told which form by its ``-i conv|gemm`` flag; here the header decides.
* A conv layer has one stride (used for H and W) and no padding; SCALE-Sim's output size is
  ``E = ceil((H - Fh + s) / s)`` (``topology_utils.topo_calc_hyperparams``). That is
  ``floor((H - Fh) / s) + 1`` (PyTorch's rule with no padding) only when ``s`` divides ``H - Fh``; otherwise
  SCALE-Sim adds one more output row (column) whose window runs past the input edge (its operand matrix holds
  ``-1`` there, ``compute/operand_matrix.py:calc_ifmap_elem_addr``, and the reads are still counted). The
  reader writes that as explicit bottom/right padding of ``(-(H - Fh)) mod s`` pixels, so the hwsim layer has
  exactly SCALE-Sim's output size, GEMM shape and MAC count (e.g. ResNet-18 ``Conv1``, 224x224, 7x7, stride 2:
  110x110 outputs, padding ``[0, 1, 0, 1]``).
* A conv layer whose name contains ``DP`` is depthwise: SCALE-Sim expands it into ``Channels`` layers of one
  input channel each, keeping ``Num Filter`` filters in each. The reader makes it one ``op: depthwise`` conv
  with ``groups = Channels`` and ``out_channels = Channels * Num Filter`` (``Num Filter`` is the depth
  multiplier; the usual ``Num Filter = 1`` gives ``out_channels = Channels``). Its GEMM view, ``groups``
  GEMMs of ``(E, Fh*Fw) x (Fh*Fw, Num Filter)``, is exactly SCALE-Sim's set of expanded layers.
* A GEMM row ``M, N, K`` is SCALE-Sim's conv ``M x K`` ifmap with ``N`` filters of ``1 x K``
  (``topology_utils.load_arrays_gemm``): an (M, K) x (K, N) product, ``op: gemm``.
* ``.cfg`` (``scalesim/scale_config.py:read_conf_file``): INI sections ``general``, ``architecture_presets``,
  ``layout``, ``sparsity``, ``run_presets`` (and ``network_presets``). SCALE-Sim's word is one byte
  (``single_layer_sim.py``: ``word_size = 1``) and its SRAM "kB" are multiplied by 1024, i.e. KiB.
"""

from __future__ import annotations

import configparser
import warnings
from pathlib import Path
from typing import Any

import yaml

from ..errors import Found, SpecError, input_file
from ..spec import ArchSpec, Conv2d, Gemm, Workload
from ..spec import validate

__all__ = ["arch_from_scalesim_cfg", "read_scalesim_cfg", "read_topology_csv", "scalesim_conv_padding",
           "write_arch_yaml"]

_CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                 "Num Filter", "Strides")
_GEMM_COLUMNS = ("Layer", "M", "N", "K")


# --------------------------------------------------------------------------------------------- topology CSV


def scalesim_conv_padding(in_size: int, kernel: int, stride: int) -> int:
    """Bottom (right) padding, pixels, that gives a zero-padded conv SCALE-Sim's output size.

    SCALE-Sim 3.0.0 (``scalesim/topology_utils.py:topo_calc_hyperparams``) has
    ``E = ceil((H - F + s) / s)``, i.e. ``ceil((H - F) / s) + 1`` outputs, where a conv with padding ``p`` at
    the far edge has ``floor((H + p - F) / s) + 1``. The two agree for ``p = (-(H - F)) mod s``, which is 0
    when ``s`` divides ``H - F``.

    Parameters
    ----------
    in_size, kernel, stride : int
        Input size, filter size and stride along one axis, pixels (``kernel <= in_size``).
    """
    return (-(in_size - kernel)) % stride


def _norm(field: str) -> str:
    return " ".join(field.replace("\ufeff", "").strip().lower().split())


def _detect_form(header: list[str], path: str) -> tuple[str, str]:
    """('conv' | 'gemm', the header's name for the column after the last required one, or '')."""
    f = [_norm(x) for x in header]
    while f and f[-1] == "":
        f.pop()
    if len(f) >= 4 and f[1:4] == ["m", "n", "k"]:
        return "gemm", header[4].strip() if len(f) > 4 else ""
    if len(f) >= 8 and "ifmap" in f[1] and "ifmap" in f[2] and "filter" in f[3] and "filter" in f[4]:
        return "conv", header[8].strip() if len(f) > 8 else ""
    raise SpecError(path, "row 1 (header)", "a SCALE-Sim conv header ('Layer name, IFMAP Height, "
                    "IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,') or GEMM "
                    "header ('Layer, M, N, K,'), comma separated",
                    ", ".join(x.strip() for x in header) or "an empty line")


def _int_field(path: str, where: str, column: str, text: str) -> int:
    t = text.strip()
    try:
        v = int(t)
    except ValueError:
        raise SpecError(path, f"{where}, column '{column}'", "an integer", t) from None
    if v <= 0:
        raise SpecError(path, f"{where}, column '{column}'", "an integer > 0", v)
    return v


def _sparsity(path: str, where: str, text: str) -> tuple[int, int]:
    t = text.strip()
    parts = t.split(":")
    try:
        n, m = (int(p) for p in parts)
    except ValueError:
        raise SpecError(path, f"{where}, column 'Sparsity'", "an N:M ratio of integers, e.g. 2:4", t) \
            from None
    if not 0 < n <= m:
        raise SpecError(path, f"{where}, column 'Sparsity'", "an N:M ratio with 0 < N <= M", t)
    return n, m


def read_topology_csv(path: str | Path, *, name: str | None = None) -> Workload:
    """Read a SCALE-Sim topology CSV (conv or GEMM form, told apart by the header) as a :class:`Workload`.

    Parameters
    ----------
    path : str or Path
        The CSV. Rows are numbered as lines of the file (the header is row 1); blank lines are skipped, as
        SCALE-Sim skips them. SCALE-Sim drops the last comma-separated field of every row, so it needs the
        trailing comma and ignores any text after it (``Conv2_dw, ..., 1,#dw``); the reader does the same,
        except that it also takes a row that just lacks the trailing comma (SCALE-Sim fails on such a row
        with an IndexError). The header is used only to tell the two forms apart, as SCALE-Sim ignores it.
    name : str, optional
        The workload name (default: the file's stem).

    Returns
    -------
    Workload
        ``weight_bits = act_bits = 8`` (SCALE-Sim's word is one byte). Conv rows become ``conv2d`` layers
        (``depthwise`` when the name contains ``DP``) with SCALE-Sim's output size (see
        :func:`scalesim_conv_padding`); GEMM rows become ``gemm`` layers with ``m, k, n``. A name used
        again gets the first free suffix ``_2``, ``_3``... (SCALE-Sim allows duplicates; hwsim layer names
        are unique). A ``Sparsity`` column is checked (``N:M``) and otherwise ignored: hwsim does not model
        sparsity (a warning says so when some layer is not 1:1).

    Raises
    ------
    SpecError
        A missing or empty file, a header of neither form, a non-integer or non-positive value, too few or
        too many columns, a filter larger than the ifmap (SCALE-Sim asserts the same), or no layers. The
        message names the file, the row (``row 3 (Conv2_1a)``) and the column.
    """
    p = input_file(path, "an existing SCALE-Sim topology CSV", empty_ok=True)
    src = str(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(src, "", "a readable UTF-8 text file", Found(type(e).__name__),
                        detail=str(e)) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise SpecError(src, "row 1 (header)", "a SCALE-Sim topology header", Found("an empty first line"))
    form, extra_col = _detect_form(lines[0].split(","), src)
    columns = _CONV_COLUMNS if form == "conv" else _GEMM_COLUMNS
    ncol = len(columns)
    layers: list[Conv2d | Gemm] = []
    used: set[str] = set()
    sparse_rows: list[str] = []
    for lineno, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        fields = raw.split(",")
        if fields[-1].strip() or len(fields) <= ncol:
            # SCALE-Sim drops the last field of every row (split(',')[:-1]), so text after the last comma
            # (a '#dw' remark, an unterminated sparsity value) is ignored; a row that just lacks the trailing
            # comma, which SCALE-Sim cannot read, is taken whole here
            if len(fields) > ncol:
                fields.pop()
        while fields and not fields[-1].strip():
            fields.pop()
        lname = fields[0].strip() if fields else ""
        where = f"row {lineno} ({lname})" if lname else f"row {lineno}"
        if not lname:
            raise SpecError(src, f"{where}, column '{columns[0]}'", "a layer name", Found("an empty field"))
        if len(fields) < ncol:
            raise SpecError(src, where, f"{ncol} comma-separated fields ({', '.join(columns)})",
                            Found(f"{len(fields)} field{'s' if len(fields) != 1 else ''}: {raw.strip()!r}"))
        if len(fields) > ncol + 1:
            raise SpecError(src, where, f"{ncol} fields ({', '.join(columns)}), optionally followed by one "
                            "'Sparsity' N:M field", Found(f"{len(fields)} fields: {raw.strip()!r}"))
        vals = [_int_field(src, where, c, f) for c, f in zip(columns[1:], fields[1:ncol])]
        if len(fields) == ncol + 1:
            if extra_col and not _norm(extra_col).startswith("sparsity"):
                raise SpecError(src, f"{where}, column '{extra_col}'", f"no field after '{columns[-1]}' but "
                                "an N:M 'Sparsity' (SCALE-Sim 3.0.0 reads the field there as sparsity)",
                                fields[ncol].strip())
            n_nz, m_blk = _sparsity(src, where, fields[ncol])
            if n_nz != m_blk:
                sparse_rows.append(lname)
        uname, k = lname, 1
        while uname in used:
            k += 1
            uname = f"{lname}_{k}"
        used.add(uname)
        if form == "gemm":
            m, n, k = vals
            layers.append(Gemm(name=uname, op="gemm", m=m, k=k, n=n))
            continue
        h, w, fh, fw, c, nf, s = vals
        for col, f, size, size_col in (("Filter Height", fh, h, "IFMAP Height"),
                                       ("Filter Width", fw, w, "IFMAP Width")):
            if f > size:
                raise SpecError(src, f"{where}, column '{col}'",
                                f"a filter no larger than the ifmap ({size_col} = {size}); SCALE-Sim asserts "
                                "the same (topology_utils.append_topo_arrays)", f)
        ph, pw = scalesim_conv_padding(h, fh, s), scalesim_conv_padding(w, fw, s)
        padding: Any = 0 if ph == pw == 0 else (0, ph, 0, pw)
        if "DP" in lname:
            layers.append(Conv2d(name=uname, op="depthwise", in_channels=c, out_channels=c * nf, groups=c,
                                 in_h=h, in_w=w, kernel=(fh, fw), stride=s, padding=padding))
        else:
            layers.append(Conv2d(name=uname, op="conv2d", in_channels=c, out_channels=nf, in_h=h, in_w=w,
                                 kernel=(fh, fw), stride=s, padding=padding))
    if not layers:
        raise SpecError(src, "", "at least one layer row after the header", Found("none"))
    if sparse_rows:
        warnings.warn(f"{src}: N:M sparsity of {len(sparse_rows)} layer(s) (first: {sparse_rows[0]}) is "
                      "ignored; hwsim models dense layers", stacklevel=2)
    return Workload(name=name or p.stem, source=f"SCALE-Sim topology CSV {src} ({form} form)", weight_bits=8,
                    act_bits=8, layers=tuple(layers))


# --------------------------------------------------------------------------------------------- .cfg


# Every key a shipped SCALE-Sim 3.0.0 cfg uses, per section, with its type and whether hwsim needs it to build
# an arch. SCALE-Sim itself requires more (read_conf_file calls config.get on ReadRequestBuffer,
# WriteRequestBuffer, UseRamulatorTrace and every [layout] and [sparsity] key), so several shipped cfgs do not
# run in SCALE-Sim although they read here. Keys SCALE-Sim does not read are accepted and kept.
_INT, _POS, _BOOL, _STR, _LIST = "int", "pos", "bool", "str", "list"
_CFG_SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "general": {"run_name": (_STR, True)},
    "architecture_presets": {
        "ArrayHeight": (_POS, True), "ArrayWidth": (_POS, True),
        "IfmapSramSzkB": (_POS, True), "FilterSramSzkB": (_POS, True), "OfmapSramSzkB": (_POS, True),
        "IfmapOffset": (_INT, False), "FilterOffset": (_INT, False), "OfmapOffset": (_INT, False),
        "Dataflow": (_STR, True), "Bandwidth": (_LIST, False),
        "ReadRequestBuffer": (_POS, False), "WriteRequestBuffer": (_POS, False),
        # present in shipped cfgs, never read by SCALE-Sim 3.0.0 (num_bank = 1, num_port = 2 hard-coded)
        "MemoryBanks": (_POS, False), "OnChipMemoryBanks": (_POS, False),
        "OnChipMemoryBankPorts": (_POS, False),
        "TopologyCsvLoc": (_STR, False),
    },
    "layout": {
        "IfmapCustomLayout": (_BOOL, False), "FilterCustomLayout": (_BOOL, False),
        "IfmapSRAMBankBandwidth": (_POS, False), "IfmapSRAMBankNum": (_POS, False),
        "IfmapSRAMBankPort": (_POS, False),
        "FilterSRAMBankBandwidth": (_POS, False), "FilterSRAMBankNum": (_POS, False),
        "FilterSRAMBankPort": (_POS, False),
    },
    "sparsity": {
        "SparsitySupport": (_BOOL, False), "SparseRep": (_STR, False), "OptimizedMapping": (_BOOL, False),
        "BlockSize": (_POS, False), "RandomNumberGeneratorSeed": (_INT, False),
    },
    "run_presets": {"InterfaceBandwidth": (_STR, True), "UseRamulatorTrace": (_BOOL, False)},
    "network_presets": {"TopologyCsvLoc": (_STR, False), "LayoutCsvLoc": (_STR, False)},
}
_REQUIRED_SECTIONS = ("general", "architecture_presets", "run_presets")
_BOOLS = {"true": True, "yes": True, "on": True, "1": True,  # configparser.getboolean's words
          "false": False, "no": False, "off": False, "0": False}


def read_scalesim_cfg(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read and check a SCALE-Sim ``.cfg``; return ``{section: {Key: value}}`` with typed values.

    Keys come back in SCALE-Sim's spelling (``ArrayHeight``, ``IfmapSramSzkB``...; the INI format itself is
    case-insensitive). Integers are ``int``, flags ``bool`` (``True/False/yes/no/1/0``, configparser's
    rule), ``Bandwidth`` a list of ints (words/cycle), everything else ``str``. ``Dataflow`` must be
    ``os``, ``ws`` or ``is`` (SCALE-Sim only warns and then runs its default, os) and ``InterfaceBandwidth``
    ``CALC`` or ``USER``; in ``USER`` mode ``Bandwidth``, ``IfmapSRAMBankBandwidth`` and
    ``FilterSRAMBankBandwidth`` are required, because that is what SCALE-Sim then reads
    (``single_layer_sim.py:run``).

    Raises
    ------
    SpecError
        A missing file, INI syntax error, unknown section or key, missing required key, or a value of the
        wrong type; the key path is ``section.Key``.
    """
    p = input_file(path, "an existing SCALE-Sim .cfg file", empty_ok=True)
    src = str(p)
    cp = configparser.ConfigParser(strict=True, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment, method-assign]  # keep the user's spelling for messages
    try:
        cp.read_string(p.read_text(encoding="utf-8-sig"), source=src)
    except configparser.DuplicateOptionError as e:
        raise SpecError(src, f"{e.section}.{e.option}", "each key once per section",
                        Found(f"a second {e.option!r} on line {e.lineno}")) from None
    except configparser.DuplicateSectionError as e:
        raise SpecError(src, e.section, "each section once",
                        Found(f"a second [{e.section}] on line {e.lineno}")) from None
    except configparser.Error as e:
        raise SpecError(src, "", "a valid INI file (SCALE-Sim .cfg)", Found("a syntax error"),
                        detail=str(e).replace("\n", " ")) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(src, "", "a readable UTF-8 text file", Found(type(e).__name__),
                        detail=str(e)) from None
    out: dict[str, dict[str, Any]] = {}
    for section in cp.sections():
        schema = _CFG_SCHEMA.get(section)
        if schema is None:
            raise SpecError(src, section, f"one of the SCALE-Sim sections ({', '.join(_CFG_SCHEMA)})",
                            Found(f"unknown section [{section}]"))
        canon = {k.lower(): k for k in schema}
        vals: dict[str, Any] = {}
        for key_u, raw in cp.items(section):
            key = canon.get(key_u.lower())
            if key is None:
                raise SpecError(src, f"{section}.{key_u}", f"one of the keys of [{section}] "
                                f"({', '.join(schema)}; case-insensitive)", Found(f"unknown key {key_u!r}"))
            if key in vals:  # the INI format is case-insensitive: 'Dataflow' and 'dataflow' are one key
                raise SpecError(src, f"{section}.{key}", "each key once per section",
                                Found(f"{key!r} twice (spelt {key_u!r} the second time)"))
            kind = schema[key][0]
            text = raw.strip()
            where = f"{section}.{key}"
            if kind in (_INT, _POS):
                try:
                    v: Any = int(text)
                except ValueError:
                    raise SpecError(src, where, "an integer", text) from None
                if kind == _POS and v <= 0:
                    raise SpecError(src, where, "an integer > 0", v)
            elif kind == _BOOL:
                if text.lower() not in _BOOLS:
                    raise SpecError(src, where, "True or False", text)
                v = _BOOLS[text.lower()]
            elif kind == _LIST:
                try:
                    v = [int(x) for x in text.split(",")]
                except ValueError:
                    raise SpecError(src, where, "a comma-separated list of integers (words/cycle)", text) \
                        from None
                if not v or min(v) <= 0:
                    raise SpecError(src, where, "bandwidths > 0 words/cycle", text)
            else:
                v = text
            vals[key] = v
        for key, (_, req) in schema.items():
            if req and key not in vals:
                raise SpecError(src, f"{section}.{key}", "this key to be given", None)
        out[section] = vals
    for section in _REQUIRED_SECTIONS:
        if section not in out:
            raise SpecError(src, section, f"a [{section}] section", None)
    arch = out["architecture_presets"]
    df = arch["Dataflow"].strip().lower()
    if df not in ("os", "ws", "is"):
        raise SpecError(src, "architecture_presets.Dataflow", "one of os, ws, is", arch["Dataflow"])
    arch["Dataflow"] = df
    mode = out["run_presets"]["InterfaceBandwidth"]
    if mode not in ("CALC", "USER"):  # SCALE-Sim compares case-sensitively
        raise SpecError(src, "run_presets.InterfaceBandwidth", "CALC or USER", mode)
    if mode == "USER":
        if "Bandwidth" not in arch:
            raise SpecError(src, "architecture_presets.Bandwidth",
                            "this key to be given (InterfaceBandwidth is USER)", None)
        lay = out.get("layout", {})
        for key in ("IfmapSRAMBankBandwidth", "FilterSRAMBankBandwidth"):
            if key not in lay:
                raise SpecError(src, f"layout.{key}", "this key to be given (InterfaceBandwidth is USER: "
                                "SCALE-Sim takes the ifmap/filter DRAM bandwidth from it)", None)
        for op in ("Ifmap", "Filter"):
            # SCALE-Sim splits a read port's bandwidth over the SRAM's banks and asserts that it divides
            # (memory/read_buffer.py, set_params: bw_per_bank * num_bank == bandwidth); it runs in USER mode only
            bw, banks = lay[f"{op}SRAMBankBandwidth"], lay.get(f"{op}SRAMBankNum", 1)
            if banks > 0 and bw % banks:
                raise SpecError(src, f"layout.{op}SRAMBankBandwidth", f"a bandwidth divisible by layout."
                                f"{op}SRAMBankNum ({banks}), as SCALE-Sim asserts in USER mode", bw,
                                detail="memory/read_buffer.py: the bandwidth is split evenly over the banks")
    return out


def arch_from_scalesim_cfg(path: str | Path, *, clock_mhz: float = 1000.0,
                           name: str | None = None) -> ArchSpec:
    """Build an :class:`ArchSpec` equivalent to a SCALE-Sim 3.0.0 ``.cfg``.

    Mapping (SCALE-Sim sources: ``scale_config.py:read_conf_file``, ``single_layer_sim.py:run``):

    * ``array``: ``rows = ArrayHeight``, ``cols = ArrayWidth``, ``dataflow = Dataflow``.
    * ``pe``: 8-bit operands, 32-bit wrapping accumulators, one MAC per PE per cycle (SCALE-Sim models no
      precision: its word is one byte, ``word_size = 1`` in ``single_layer_sim.py``).
    * SRAMs: ``size_kib = <Operand>SramSzkB`` (SCALE-Sim multiplies kB by 1024), ``word_bits = 8`` (one
      SCALE-Sim word), ``double_buffered: true`` (SCALE-Sim's active fraction 0.5).
    * DRAM: in ``CALC`` mode SCALE-Sim estimates bandwidth and never stalls on it (``memory/
      read_buffer_estimate_bw.py``; scalesim.md §3), so the bandwidth is ``unbounded``. In ``USER`` mode
      SCALE-Sim gives the ifmap and filter DRAM->SRAM ports ``IfmapSRAMBankBandwidth`` and
      ``FilterSRAMBankBandwidth`` words/cycle and the ofmap SRAM->DRAM port ``Bandwidth[0]`` (the rest of
      the list is ignored). hwsim has one DRAM channel shared by all traffic; it gets
      ``min(IfmapSRAMBankBandwidth, FilterSRAMBankBandwidth)`` bytes/cycle (one word = one byte), the rate
      either read port alone is guaranteed, which is the shipped cfgs' common value (10).
    * ``timing.convention: scalesim``: cycles are SCALE-Sim's "Total Cycles" (one less per GEMM).
    * ``clock_mhz``: SCALE-Sim has no clock; the default 1000 MHz makes one cycle one nanosecond.

    Features hwsim does not model are dropped with a warning: N:M sparsity (``SparsitySupport``), custom
    SRAM layouts with bank conflicts, Ramulator DRAM traces.

    Parameters
    ----------
    path : str or Path
        The ``.cfg``.
    clock_mhz : float
        The array clock, MHz.
    name : str, optional
        The arch name (default: the cfg's ``run_name``).

    Raises
    ------
    SpecError
        As :func:`read_scalesim_cfg`.
    """
    src = str(path)
    cfg = read_scalesim_cfg(path)
    a = cfg["architecture_presets"]
    lay = cfg.get("layout", {})
    mode = cfg["run_presets"]["InterfaceBandwidth"]
    dropped = []
    if cfg.get("sparsity", {}).get("SparsitySupport"):
        dropped.append("sparsity.SparsitySupport")
    for key in ("IfmapCustomLayout", "FilterCustomLayout"):
        if lay.get(key):
            dropped.append(f"layout.{key}")
    if cfg["run_presets"].get("UseRamulatorTrace"):
        dropped.append("run_presets.UseRamulatorTrace")
    if dropped:
        warnings.warn(f"{src}: {', '.join(dropped)} not modelled by hwsim; the arch ignores them",
                      stacklevel=2)
    if mode == "CALC":
        bw: Any = "unbounded"
        bw_note = "CALC mode: no bandwidth stalls in SCALE-Sim -> unbounded"
    else:
        bi, bf = lay["IfmapSRAMBankBandwidth"], lay["FilterSRAMBankBandwidth"]
        bw = float(min(bi, bf))
        bw_note = (f"USER mode: ifmap port {bi}, filter port {bf}, ofmap port {a['Bandwidth'][0]} "
                   f"words/cycle -> one shared channel of min(ifmap, filter) = {bw:g} bytes/cycle")
    R, C, df = a["ArrayHeight"], a["ArrayWidth"], a["Dataflow"]
    data = {
        "name": name or cfg["general"]["run_name"],
        "description": (f"SCALE-Sim {R}x{C} {df}, SRAM {a['IfmapSramSzkB']}/{a['FilterSramSzkB']}/"
                        f"{a['OfmapSramSzkB']} KiB (ifmap/filter/ofmap), {bw_note}"),
        "source": f"SCALE-Sim 3.0.0 cfg {src}",
        "clock_mhz": clock_mhz,
        "array": {"rows": R, "cols": C, "dataflow": df},
        "pe": {"operand_bits": 8, "acc_bits": 32, "acc_mode": "wrap", "precision_mode": "fixed"},
        "memory": {
            "double_buffered": True,
            "ifmap_sram": {"size_kib": a["IfmapSramSzkB"], "word_bits": 8},
            "filter_sram": {"size_kib": a["FilterSramSzkB"], "word_bits": 8},
            "ofmap_sram": {"size_kib": a["OfmapSramSzkB"], "word_bits": 8},
            "dram": {"bandwidth_bytes_per_cycle": bw},
        },
        "timing": {"convention": "scalesim"},
    }
    return validate(ArchSpec, data, src)


def write_arch_yaml(arch: ArchSpec, path: str | Path, *, comment: str = "") -> Path:
    """Write ``arch`` as an arch YAML that :func:`hwsim.spec.load_arch` loads back to an equal spec.

    The file starts with comment lines: ``comment`` (if given), the arch's ``source`` (for an arch from
    :func:`arch_from_scalesim_cfg`, the cfg it came from) and its ``description``. Keys whose value is
    ``None`` (no override) are left out.

    Returns
    -------
    Path
        The file written.
    """
    p = Path(path)
    head = comment.splitlines()
    head.append(f"source: {arch.source}" if arch.source else "source: (none given)")
    if arch.description:
        head.append(arch.description)
    if arch.timing.convention == "scalesim":
        head.append("timing.convention scalesim: cycles as SCALE-Sim 3.0.0 reports them "
                    "(\"Total Cycles\", one less per GEMM)")
    body = yaml.safe_dump(arch.model_dump(mode="json", exclude_none=True), sort_keys=False,
                          default_flow_style=False)
    p.write_text("".join(f"# {ln}\n" if ln else "#\n" for ln in head) + body)
    return p
