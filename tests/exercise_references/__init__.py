"""The exercises' references: the right answers, the cases and the known mistakes' code, kept out of
the package a learner installs. ``scripts/exercise_data.py`` records what they return into
``src/demos/exercises/data/``, which the package' checkers compare with."""
