"""Populations: K trainings of one architecture, stacked on a leading axis and run as one program.

>>> from dagjax import population
>>> pop = population.Population(model, "mse", "adam",
...                             hyperparams={"learning_rate": [1e-3, 3e-3], "seed": [0, 1]})
>>> ps, histories = population.fit_population(pop, x, y, batch_size=32, epochs=5)
>>> model.params = population.member(ps.train, 1).params   # the second member's weights
"""

from dagjax.training.population import Population as Population
from dagjax.training.population import PopulationState as PopulationState
from dagjax.training.population import architecture_key as architecture_key
from dagjax.training.population import check_same_architecture as check_same_architecture
from dagjax.training.population import fit_population as fit_population
from dagjax.training.population import group_by_architecture as group_by_architecture
from dagjax.training.population import keep_where as keep_where
from dagjax.training.population import member as member
from dagjax.training.population import optimizer_program as optimizer_program
from dagjax.training.population import stack as stack
from dagjax.training.population import tunable_hyperparams as tunable_hyperparams
from dagjax.training.population import unstack as unstack
