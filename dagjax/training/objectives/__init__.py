"""What training minimises and reports: loss functions, ``Loss`` classes and metrics (Keras's names)."""
