"""Per-action energy and area per component: technology tables (``hwsim/tech/``), action counts x energy per
action, units x area per unit, every arch override applied and every number's source recorded."""

from ._area import AreaBreakdown, area_breakdown
from ._model import ActionEnergies, EnergyRecord, action_energies, energy_components, layer_energy, mac_energy
from ._vector import vector_op_energies
from ._tech import TechEntry, TechTable, available_tech, load_tech, parse_tech, parse_unit

__all__ = ["ActionEnergies", "EnergyRecord", "action_energies", "energy_components", "layer_energy",
           "mac_energy", "AreaBreakdown", "area_breakdown",
           "vector_op_energies", "TechTable", "TechEntry", "available_tech", "load_tech", "parse_tech", "parse_unit"]
