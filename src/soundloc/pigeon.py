"""The pigeon experiment's former home, kept so that existing imports work: it lives in
:mod:`soundloc.experiments.pigeon`; attention mass and density in :mod:`soundloc.metrics.regions`;
the density plot in :mod:`soundloc.viz`."""
from soundloc.experiments.pigeon import *  # noqa: F401,F403
from soundloc.experiments.pigeon import __all__ as _pigeon_names
from soundloc.metrics.regions import attention_summary, random_attention, region_density, region_mass
from soundloc.viz import plot_densities

__all__ = [*_pigeon_names, "attention_summary", "plot_densities", "random_attention", "region_density", "region_mass"]
