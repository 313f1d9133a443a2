"""What finished runs show: Table 1 (`results`, `summary`, `tables`, `figures`, `runs`), the random
search's statistics (`random_search`) and the adversarial-example visualiser (`visualize`)."""
