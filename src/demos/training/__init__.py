"""Training: preference losses as pure functions of tensors, and TRL driven offline as their reference."""
