"""Toy tasks with their data, one module per chapter that uses one (``zephyr``)."""
