"""Per-action energy: technology tables (``hwsim/tech/``) and action counts x energy per action."""

from ._model import ENERGY_COMPONENTS, ActionEnergies, action_energies, layer_energy
from ._tech import TechTable, available_tech, load_tech

__all__ = ["ENERGY_COMPONENTS", "ActionEnergies", "action_energies", "layer_energy", "TechTable",
           "available_tech", "load_tech"]
