"""The Results tree: heat maps under model -> kind, one checkbox per map, at most one checked at a time.

Slice views show one foreground volume, so checking a map unchecks the one before; the primary result's model
comes first and opens expanded, the others stay collapsed until needed.
"""
from __future__ import annotations

import qt

from BraTSXAIHelpers.grouping import first_explanation, group_overlays

BLANK_NOTE = " (blank: nothing found)"


class OverlayTree:
    """A QTreeWidget over a result's overlays; `onToggled(node, checked)` is called on every user change."""

    def __init__(self, parentLayout, onToggled):
        self.tree = qt.QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setColumnCount(1)
        parentLayout.addWidget(self.tree)
        self._onToggled = onToggled
        self._items = {}  # node ID -> (QTreeWidgetItem, node)
        self._updating = False
        self.tree.connect("itemChanged(QTreeWidgetItem*,int)", self._itemChanged)

    def clear(self) -> None:
        self._updating = True
        self.tree.clear()
        self._items = {}
        self._updating = False

    def show(self, result) -> None:
        """Fill the tree from a result and check its first explanation (which shows it)."""
        self.clear()
        nodeBySpec = {id(spec): node for spec, node in result.overlays}
        groups = group_overlays([spec for spec, _ in result.overlays], primary=result.primaryModel)
        self._updating = True
        for index, (modelLabel, kinds) in enumerate(groups):
            modelItem = qt.QTreeWidgetItem(self.tree, [modelLabel + (" (primary)" if index == 0 else "")])
            for kindLabel, specs in kinds:
                kindItem = qt.QTreeWidgetItem(modelItem, [kindLabel])
                for spec in specs:
                    node = nodeBySpec[id(spec)]
                    item = qt.QTreeWidgetItem(kindItem, [(spec.target or node.GetName()) +
                                                         (BLANK_NOTE if spec.blank else "")])
                    item.setToolTip(0, f"Show {node.GetName()} over the T1ce in the slice views.")
                    item.setData(0, qt.Qt.UserRole, node.GetID())  # PythonQt wrappers are not identical
                    item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable)
                    item.setCheckState(0, qt.Qt.Unchecked)
                    self._items[node.GetID()] = (item, node)
            modelItem.setExpanded(index == 0)
            for i in range(modelItem.childCount()):
                modelItem.child(i).setExpanded(index == 0)
        self._updating = False
        first = first_explanation(groups)
        if first is not None:
            self.setChecked(nodeBySpec[id(first)], True, notify=True)

    def setChecked(self, node, checked: bool, notify: bool = False) -> None:
        item, _ = self._items[node.GetID()]
        self._updating = not notify
        item.setCheckState(0, qt.Qt.Checked if checked else qt.Qt.Unchecked)
        self._updating = False

    def checkedNode(self):
        return next((node for item, node in self._items.values() if item.checkState(0) == qt.Qt.Checked), None)

    def _itemChanged(self, item, column):
        if self._updating:
            return
        nodeId = item.data(0, qt.Qt.UserRole)
        if nodeId not in self._items:
            return  # a model or kind row
        item, node = self._items[nodeId]
        checked = item.checkState(0) == qt.Qt.Checked
        if checked:  # slice views hold one foreground volume at a time
            self._updating = True
            for otherId, (other, _) in self._items.items():
                if otherId != nodeId:
                    other.setCheckState(0, qt.Qt.Unchecked)
            self._updating = False
        self._onToggled(node, checked)
