"""Language-model variants whose weights load from a transformers class: ``<model_type>.py`` each."""
