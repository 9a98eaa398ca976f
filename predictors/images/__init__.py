"""Image handling: decoding with limits, the gate, the quality check, the fundus and ECG
page steps, the one model transform, activation maps, the result page's thumbnail.

Pillow and numpy only, never Django: training imports this package to make the same
pixels the site serves (tests/test_layout.py holds that rule).
"""
