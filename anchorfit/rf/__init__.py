"""The exact receptive-field engine: IR (graph), propagation (engine), torch front end (trace),
and the gradient oracle (probe)."""

from anchorfit.rf.engine import CONVENTION, AxisMap, NodeRF, RFAnalysis, analyze, extend, head_window
from anchorfit.rf.graph import Graph, GraphBuilder, Node

__all__ = ["CONVENTION", "AxisMap", "Graph", "GraphBuilder", "Node", "NodeRF", "RFAnalysis",
           "analyze", "extend", "head_window"]
