"""Per-action energy: technology tables (``hwsim/tech/``) and action counts x energy per action."""

from ._model import ActionEnergies, EnergyRecord, action_energies, energy_components, layer_energy
from ._tech import TechTable, available_tech, load_tech

__all__ = ["ActionEnergies", "EnergyRecord", "action_energies", "energy_components", "layer_energy",
           "TechTable", "available_tech", "load_tech"]
