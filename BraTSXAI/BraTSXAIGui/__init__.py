"""The module's Qt side beyond the widget itself: the Results tree of heat maps and the in-Slicer self-test."""
