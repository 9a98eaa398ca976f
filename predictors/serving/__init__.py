"""Model serving: the ModelLoader registry (the only code that loads models), the artifact
contract it verifies, one runtime per model kind, memory accounting, metrics and warm-up.
"""
