"""Populations: K trainings of one architecture as one compiled program (see ``_population``)."""

from dagjax.training.population._constants import optimizer_program as optimizer_program
from dagjax.training.population._fit import fit_population as fit_population
from dagjax.training.population._groups import architecture_key as architecture_key
from dagjax.training.population._groups import group_by_architecture as group_by_architecture
from dagjax.training.population._groups import tunable_hyperparams as tunable_hyperparams
from dagjax.training.population._population import Population as Population
from dagjax.training.population._population import PopulationState as PopulationState
from dagjax.training.population._population import keep_where as keep_where
from dagjax.training.population._stacking import check_same_architecture as check_same_architecture
from dagjax.training.population._stacking import member as member
from dagjax.training.population._stacking import stack as stack
from dagjax.training.population._stacking import unstack as unstack
