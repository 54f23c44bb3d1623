"""The LiveSR desktop GUI (qtpy + pyqtgraph)."""
