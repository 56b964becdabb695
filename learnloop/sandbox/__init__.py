"""Running learners' code: the bubblewrap sandbox, its runner and the judge's comparison."""
